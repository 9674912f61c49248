#include "tokenizer/pre_tokenizers.h"

#include "tokenizer/byte_level.h"
#include "tokenizer/regex.h"
#include "tokenizer/spec_fields.h"
#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace pcm {

namespace {

// HF NormalizedString::prepend on a non-empty piece.
void prepend(Piece& p, std::string_view s) {
  if (p.text.empty()) return;
  p.text.insert(0, s);
  if (p.zero_prefix > 0) p.zero_prefix += static_cast<uint32_t>(s.size());
}

class ByteLevelPre : public PreTokenizer {
 public:
  ByteLevelPre(bool add_prefix_space, bool use_regex) : add_prefix_space_(add_prefix_space), use_regex_(use_regex) {}

  void pre_tokenize(std::vector<Piece>& pieces) const override {
    const Regex& re = gpt2_regex();
    split_pieces(pieces, [&](Piece& p, std::vector<Piece>& out) {
      if (add_prefix_space_ && (p.text.empty() || p.text[0] != ' ')) prepend(p, " ");
      // Isolated split: every match and every gap becomes a piece, mapped to the byte alphabet.
      auto emit = [&](size_t a, size_t b) {
        if (a >= b) return;
        Piece sub;
        sub.at_start = p.at_start && a < p.zero_prefix;
        size_t zp_in = sub.at_start ? std::min<size_t>(p.zero_prefix, b) - a : 0;
        size_t zp = 0;
        sub.text = byte_level_encode(std::string_view(p.text).substr(a, b - a), zp_in, &zp);
        sub.zero_prefix = static_cast<uint32_t>(zp);
        out.push_back(std::move(sub));
      };
      if (!use_regex_) {
        emit(0, p.text.size());
        return;
      }
      size_t prev = 0;
      re.for_each_match(p.text, [&](size_t a, size_t b) {
        emit(prev, a);
        emit(a, b);
        prev = b;
      });
      emit(prev, p.text.size());
    });
  }

 private:
  bool add_prefix_space_, use_regex_;
};

class Metaspace : public PreTokenizer {
 public:
  Metaspace(uint32_t replacement, PrependScheme scheme, bool split)
      : replacement_cp_(replacement), scheme_(scheme), split_(split) {
    utf8_append(replacement_, replacement);
  }

  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Segment> segments;
    split_pieces(pieces, [&](Piece& p, std::vector<Piece>& out) {
      replace_spaces(p);
      bool starts = p.text.compare(0, replacement_.size(), replacement_) == 0;
      if (!starts && (scheme_ == PrependScheme::Always || (scheme_ == PrependScheme::First && p.at_start))) {
        prepend(p, replacement_);
      }
      if (!split_) {
        if (!p.text.empty()) out.push_back(std::move(p));
        return;
      }
      find_char_segments(p.text, [&](uint32_t cp) { return cp == replacement_cp_; }, segments);
      split_piece(p, segments, SplitBehavior::MergedWithNext, out);
    });
  }

 private:
  void replace_spaces(Piece& p) const {
    if (p.text.find(' ') == std::string::npos) return;
    std::string out;
    out.reserve(p.text.size() + 8);
    size_t zp = 0;
    for (size_t i = 0; i < p.text.size(); ++i) {
      size_t before = out.size();
      if (p.text[i] == ' ') out += replacement_;
      else out += p.text[i];
      if (i < p.zero_prefix) zp += out.size() - before;
    }
    p.text.swap(out);
    p.zero_prefix = static_cast<uint32_t>(zp);
  }

  uint32_t replacement_cp_;
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
};

class SplitPre : public PreTokenizer {
 public:
  SplitPre(Regex re, SplitBehavior behavior, bool invert) : re_(std::move(re)), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Segment> segments;
    split_pieces(pieces, [&](Piece& p, std::vector<Piece>& out) {
      find_regex_segments(re_, p.text, invert_, segments);
      split_piece(p, segments, behavior_, out);
    });
  }

 private:
  Regex re_;
  SplitBehavior behavior_;
  bool invert_;
};

// Splits on every character that satisfies Pred (Digits, Punctuation, WhitespaceSplit, ...).
template <class Pred>
class CharSplit : public PreTokenizer {
 public:
  CharSplit(Pred pred, SplitBehavior behavior) : pred_(pred), behavior_(behavior) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Segment> segments;
    split_pieces(pieces, [&](Piece& p, std::vector<Piece>& out) {
      find_char_segments(p.text, pred_, segments);
      split_piece(p, segments, behavior_, out);
    });
  }

 private:
  Pred pred_;
  SplitBehavior behavior_;
};

template <class Pred>
std::unique_ptr<PreTokenizer> char_split(Pred pred, SplitBehavior behavior) {
  return std::make_unique<CharSplit<Pred>>(pred, behavior);
}

class PreTokenizerSequence : public PreTokenizer {
 public:
  explicit PreTokenizerSequence(std::vector<std::unique_ptr<PreTokenizer>> items) : items_(std::move(items)) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (const auto& p : items_) p->pre_tokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> items_;
};

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const json& spec, const std::string& where) {
  PCM_CHECK(spec.is_object(), "{}: expected an object, got {}", where, spec.dump());
  PCM_CHECK(spec.contains("type") && spec["type"].is_string(), "{}: missing \"type\"", where);
  const auto& type = spec["type"].get_ref<const std::string&>();
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelPre>(json_bool_or(spec, "add_prefix_space", true), json_bool_or(spec, "use_regex", true));
  }
  if (type == "Metaspace") {
    uint32_t replacement = spec_char(spec, "replacement", where, 0x2581);
    PrependScheme scheme = spec_prepend_scheme(spec, where);
    if (spec.contains("add_prefix_space") && spec["add_prefix_space"].is_boolean() && !spec["add_prefix_space"].get<bool>()) {
      PCM_CHECK(scheme == PrependScheme::Never || !spec.contains("prepend_scheme") || spec["prepend_scheme"].is_null(),
                "{}: add_prefix_space does not match declared prepend_scheme", where);
      scheme = PrependScheme::Never;
    }
    return std::make_unique<Metaspace>(replacement, scheme, json_bool_or(spec, "split", true));
  }
  if (type == "Split") {
    PCM_CHECK(spec.contains("pattern"), "{}: Split needs \"pattern\"", where);
    PCM_CHECK(spec.contains("behavior"), "{}: Split needs \"behavior\"", where);
    return std::make_unique<SplitPre>(make_pattern(spec["pattern"], where),
                                      parse_split_behavior(spec["behavior"], where + ".behavior"),
                                      json_bool_or(spec, "invert", false));
  }
  if (type == "Digits") {
    bool individual = json_bool_or(spec, "individual_digits", false);
    return char_split(is_numeric, individual ? SplitBehavior::Isolated : SplitBehavior::Contiguous);
  }
  if (type == "Punctuation") {
    SplitBehavior b = SplitBehavior::Isolated;
    if (spec.contains("behavior") && !spec["behavior"].is_null()) b = parse_split_behavior(spec["behavior"], where + ".behavior");
    return char_split(is_punctuation, b);
  }
  if (type == "WhitespaceSplit") return char_split(is_white_space, SplitBehavior::Removed);
  if (type == "Whitespace") {
    // HF: keep the matches of Rust-regex \w+|[^\w\s]+ and drop the rest.
    static const char* kWord = "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}";
    Regex re = Regex::pcre(fmt::format("[{0}]+|[^{0}\\p{{White_Space}}]+", kWord), where);
    return std::make_unique<SplitPre>(std::move(re), SplitBehavior::Removed, true);
  }
  if (type == "BertPreTokenizer") {
    std::vector<std::unique_ptr<PreTokenizer>> items;
    items.push_back(char_split(is_white_space, SplitBehavior::Removed));
    items.push_back(char_split(is_punctuation, SplitBehavior::Isolated));
    return std::make_unique<PreTokenizerSequence>(std::move(items));
  }
  if (type == "CharDelimiterSplit") {
    uint32_t delim = spec_char(spec, "delimiter", where, 0);
    PCM_CHECK(spec.contains("delimiter"), "{}: CharDelimiterSplit needs \"delimiter\"", where);
    return char_split([delim](uint32_t cp) { return cp == delim; }, SplitBehavior::Removed);
  }
  if (type == "Sequence") {
    PCM_CHECK(spec.contains("pretokenizers") && spec["pretokenizers"].is_array(),
              "{}: Sequence needs a \"pretokenizers\" list", where);
    std::vector<std::unique_ptr<PreTokenizer>> items;
    size_t i = 0;
    for (const auto& child : spec["pretokenizers"]) {
      items.push_back(make_pre_tokenizer(child, fmt::format("{}.pretokenizers[{}]", where, i++)));
    }
    return std::make_unique<PreTokenizerSequence>(std::move(items));
  }
  fail("{}: unsupported pre-tokenizer type \"{}\" (supported: ByteLevel, Metaspace, Split, Digits, Punctuation, "
       "Whitespace, WhitespaceSplit, BertPreTokenizer, CharDelimiterSplit, Sequence)", where, type);
}

}  // namespace pcm
