#include "tokenizer/normalizers.h"

#include <vector>

#include "tokenizer/byte_level.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace pcm {

namespace {

// Maps each character through `fn(cp, out)` (which appends zero or more characters); characters
// that produce nothing are removed. zero_prefix follows the characters it covered.
template <class Fn>
void map_chars(Piece& p, Fn&& fn) {
  std::string out;
  out.reserve(p.text.size() + p.text.size() / 8);
  size_t zp = 0;
  for (size_t i = 0; i < p.text.size();) {
    size_t len;
    uint32_t cp = utf8_decode(p.text, i, &len);
    size_t before = out.size();
    fn(cp, out);
    if (i < p.zero_prefix) zp += out.size() - before;
    i += len;
  }
  p.text.swap(out);
  p.zero_prefix = static_cast<uint32_t>(zp);
}

class UnicodeNormalizer : public Normalizer {
 public:
  explicit UnicodeNormalizer(NormalForm form) : form_(form) {}
  void normalize(Piece& p) const override {
    std::string out = unicode_normalize(p.text, form_);
    if (p.zero_prefix > 0) {
      std::string head = unicode_normalize(std::string_view(p.text).substr(0, p.zero_prefix), form_);
      if (out.compare(0, head.size(), head) == 0) {
        p.zero_prefix = static_cast<uint32_t>(head.size());
      } else {
        size_t len = 0;
        if (!out.empty()) utf8_decode(out, 0, &len);
        p.zero_prefix = static_cast<uint32_t>(len);
      }
    }
    p.text.swap(out);
  }

 private:
  NormalForm form_;
};

class Lowercase : public Normalizer {
 public:
  void normalize(Piece& p) const override {
    bool ascii_lower = true;
    for (char c : p.text) {
      auto b = static_cast<uint8_t>(c);
      if (b >= 0x80 || (b >= 'A' && b <= 'Z')) {
        ascii_lower = false;
        break;
      }
    }
    if (ascii_lower) return;
    map_chars(p, [](uint32_t cp, std::string& out) { append_lowercase(out, cp); });
  }
};

class Strip : public Normalizer {
 public:
  Strip(bool left, bool right) : left_(left), right_(right) {}
  void normalize(Piece& p) const override {
    const std::string& s = p.text;
    size_t begin = 0, end = s.size();
    if (left_) {
      while (begin < end) {
        size_t len;
        if (!is_white_space(utf8_decode(s, begin, &len))) break;
        begin += len;
      }
    }
    if (right_) {
      while (end > begin) {
        size_t len;
        if (!is_white_space(utf8_decode_last(s, end, &len))) break;
        end -= len;
      }
    }
    if (begin == 0 && end == s.size()) return;
    size_t zp = p.zero_prefix > begin ? p.zero_prefix - begin : 0;
    p.text = s.substr(begin, end - begin);
    p.zero_prefix = static_cast<uint32_t>(std::min(zp, p.text.size()));
  }

 private:
  bool left_, right_;
};

class StripAccents : public Normalizer {
 public:
  void normalize(Piece& p) const override {
    map_chars(p, [](uint32_t cp, std::string& out) {
      if (!is_combining_mark(cp)) utf8_append(out, cp);
    });
  }
};

// SentencePiece's nmt_nfkc control-character removal and whitespace mapping (HF Nmt).
class Nmt : public Normalizer {
 public:
  void normalize(Piece& p) const override {
    map_chars(p, [](uint32_t cp, std::string& out) {
      if ((cp >= 0x1 && cp <= 0x8) || cp == 0xB || (cp >= 0xE && cp <= 0x1F) || cp == 0x7F || cp == 0x8F ||
          cp == 0x9F)
        return;
      switch (cp) {
        case 0x9: case 0xA: case 0xC: case 0xD: case 0x1680: case 0x2028: case 0x2029: case 0x2581:
        case 0xFEFF: case 0xFFFD:
          out += ' ';
          return;
        default:
          if (cp >= 0x200B && cp <= 0x200F) out += ' ';
          else utf8_append(out, cp);
      }
    });
  }
};

class ByteLevelNormalizer : public Normalizer {
 public:
  void normalize(Piece& p) const override {
    size_t zp = 0;
    std::string out = byte_level_encode(p.text, p.zero_prefix, &zp);
    p.text.swap(out);
    p.zero_prefix = static_cast<uint32_t>(zp);
  }
};

class Prepend : public Normalizer {
 public:
  explicit Prepend(std::string prefix) : prefix_(std::move(prefix)) {}
  void normalize(Piece& p) const override {
    if (p.text.empty()) return;
    p.text.insert(0, prefix_);
    if (p.zero_prefix > 0) p.zero_prefix += static_cast<uint32_t>(prefix_.size());
  }

 private:
  std::string prefix_;
};

class Replace : public Normalizer {
 public:
  Replace(Regex re, std::string content) : re_(std::move(re)), content_(std::move(content)) {}
  void normalize(Piece& p) const override {
    const std::string& s = p.text;
    std::string out;
    size_t last = 0, zp = 0, old_zp = p.zero_prefix;
    bool zero_run = old_zp > 0;
    bool any = false;
    re_.for_each_match(s, [&](size_t a, size_t b) {
      any = true;
      if (zero_run && a > last) {  // the unchanged text before the match
        zp += std::min(a, old_zp) > last ? std::min(a, old_zp) - last : 0;
        if (old_zp < a) zero_run = false;
      }
      out.append(s, last, a - last);
      // HF aligns inserted content with the last byte of the match ((0, 0) for an empty match at 0).
      if (zero_run && !content_.empty()) {
        if (b == 0 || b - 1 < old_zp) zp += content_.size();
        else zero_run = false;
      }
      out += content_;
      last = b;
    });
    if (!any) return;
    if (zero_run && old_zp > last) zp += old_zp - last;
    out.append(s, last, std::string::npos);
    p.text.swap(out);
    p.zero_prefix = static_cast<uint32_t>(std::min(zp, p.text.size()));
  }

 private:
  Regex re_;
  std::string content_;
};

class NormalizerSequence : public Normalizer {
 public:
  explicit NormalizerSequence(std::vector<std::unique_ptr<Normalizer>> items) : items_(std::move(items)) {}
  void normalize(Piece& p) const override {
    for (const auto& n : items_) n->normalize(p);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> items_;
};

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const json& spec, const std::string& where) {
  PCM_CHECK(spec.is_object(), "{}: expected an object, got {}", where, spec.dump());
  PCM_CHECK(spec.contains("type") && spec["type"].is_string(), "{}: missing \"type\"", where);
  const auto& type = spec["type"].get_ref<const std::string&>();
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(NormalForm::NFC);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(NormalForm::NFD);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(NormalForm::NFKC);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(NormalForm::NFKD);
  if (type == "Lowercase") return std::make_unique<Lowercase>();
  if (type == "StripAccents") return std::make_unique<StripAccents>();
  if (type == "Nmt") return std::make_unique<Nmt>();
  if (type == "ByteLevel") return std::make_unique<ByteLevelNormalizer>();
  if (type == "Strip") {
    return std::make_unique<Strip>(json_bool_or(spec, "strip_left", false), json_bool_or(spec, "strip_right", false));
  }
  if (type == "Prepend") {
    PCM_CHECK(spec.contains("prepend") && spec["prepend"].is_string(), "{}: Prepend needs a string \"prepend\"", where);
    return std::make_unique<Prepend>(spec["prepend"].get<std::string>());
  }
  if (type == "Replace") {
    PCM_CHECK(spec.contains("pattern"), "{}: Replace needs \"pattern\"", where);
    PCM_CHECK(spec.contains("content") && spec["content"].is_string(), "{}: Replace needs a string \"content\"", where);
    return std::make_unique<Replace>(make_pattern(spec["pattern"], where), spec["content"].get<std::string>());
  }
  if (type == "Sequence") {
    PCM_CHECK(spec.contains("normalizers") && spec["normalizers"].is_array(), "{}: Sequence needs a \"normalizers\" list",
              where);
    std::vector<std::unique_ptr<Normalizer>> items;
    size_t i = 0;
    for (const auto& child : spec["normalizers"]) {
      items.push_back(make_normalizer(child, fmt::format("{}.normalizers[{}]", where, i++)));
    }
    return std::make_unique<NormalizerSequence>(std::move(items));
  }
  fail("{}: unsupported normalizer type \"{}\" (supported: NFC, NFD, NFKC, NFKD, Lowercase, Strip, StripAccents, "
       "Prepend, Replace, Nmt, ByteLevel, Sequence)", where, type);
}

}  // namespace pcm
