#include "tokenizer/decoders.h"

#include "tokenizer/byte_level.h"
#include "tokenizer/pretokenized.h"
#include "tokenizer/regex.h"
#include "tokenizer/spec_fields.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace pcm {

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Bytes of all tokens, each through the byte alphabet (or verbatim if any of its characters is
// outside it), then Rust's from_utf8_lossy: one token.
class ByteLevelDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& t : tokens) {
      size_t start = bytes.size();
      bool all = true;
      for (size_t i = 0; i < t.size();) {
        size_t len;
        int b = byte_level_byte(utf8_decode(t, i, &len));
        if (b < 0) {
          all = false;
          break;
        }
        bytes += static_cast<char>(b);
        i += len;
      }
      if (!all) {
        bytes.resize(start);
        bytes += t;
      }
    }
    tokens.assign(1, utf8_lossy(bytes));
  }
};

class MetaspaceDecoder : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, bool prepend) : replacement_(std::move(replacement)), prepend_(prepend) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string& t = tokens[i];
      if (t.find(replacement_) == std::string::npos) continue;
      std::string out;
      out.reserve(t.size());
      for (size_t k = 0; k < t.size();) {
        if (t.compare(k, replacement_.size(), replacement_) == 0) {
          if (!(i == 0 && prepend_)) out += ' ';  // HF drops every replacement in the first token
          k += replacement_.size();
        } else {
          out += t[k++];
        }
      }
      t.swap(out);
    }
  }

 private:
  std::string replacement_;
  bool prepend_;
};

class ByteFallbackDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string pending;
    auto flush = [&] {
      if (pending.empty()) return;
      if (utf8_valid(pending)) {
        out.push_back(pending);
      } else {
        for (size_t i = 0; i < pending.size(); ++i) out.emplace_back(kReplacementChar);
      }
      pending.clear();
    };
    for (std::string& t : tokens) {
      int b = byte_fallback_value(t);
      if (b >= 0) {
        pending += static_cast<char>(b);
        continue;
      }
      flush();
      out.push_back(std::move(t));
    }
    flush();
    tokens.swap(out);
  }
  bool joins_byte_tokens() const override { return true; }
};

class FuseDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

class StripDecoder : public Decoder {
 public:
  StripDecoder(uint32_t content, size_t start, size_t stop) : content_(content), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& t : tokens) {
      // Character offsets of t.
      std::vector<size_t> offs;
      for (size_t i = 0; i < t.size(); i += utf8_seq_len(static_cast<uint8_t>(t[i]))) offs.push_back(i);
      size_t n = offs.size();
      size_t start_cut = 0;
      for (size_t i = 0; i < start_ && i < n; ++i) {
        size_t len;
        if (utf8_decode(t, offs[i], &len) != content_) break;
        start_cut = i + 1;
      }
      size_t stop_cut = n;
      for (size_t i = 0; i < stop_ && i < n; ++i) {
        size_t index = n - i - 1;
        size_t len;
        if (utf8_decode(t, offs[index], &len) != content_) break;
        stop_cut = index;
      }
      if (stop_cut <= start_cut) {
        t.clear();
        continue;
      }
      size_t a = offs[start_cut], b = stop_cut < n ? offs[stop_cut] : t.size();
      t = t.substr(a, b - a);
    }
  }

 private:
  uint32_t content_;
  size_t start_, stop_;
};

class ReplaceDecoder : public Decoder {
 public:
  ReplaceDecoder(Regex re, std::string content) : re_(std::move(re)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<Segment> segments;
    for (std::string& t : tokens) {
      find_regex_segments(re_, t, false, segments);
      std::string out;
      for (const auto& s : segments) {
        if (s.is_match) out += content_;
        else out.append(t, s.start, s.end - s.start);
      }
      t.swap(out);
    }
  }

 private:
  Regex re_;
  std::string content_;
};

// BPEDecoder: the end-of-word suffix becomes a space, except in the last token.
class BpeDecoder : public Decoder {
 public:
  explicit BpeDecoder(std::string suffix) : suffix_(std::move(suffix)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    if (suffix_.empty()) return;
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string& t = tokens[i];
      std::string replacement = i + 1 == tokens.size() ? "" : " ";
      std::string out;
      for (size_t k = 0; k < t.size();) {
        if (t.compare(k, suffix_.size(), suffix_) == 0) {
          out += replacement;
          k += suffix_.size();
        } else {
          out += t[k++];
        }
      }
      t.swap(out);
    }
  }

 private:
  std::string suffix_;
};

class DecoderSequence : public Decoder {
 public:
  explicit DecoderSequence(std::vector<std::unique_ptr<Decoder>> items) : items_(std::move(items)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& d : items_) d->decode_chain(tokens);
  }
  bool joins_byte_tokens() const override {
    for (const auto& d : items_) {
      if (d->joins_byte_tokens()) return true;
    }
    return false;
  }

 private:
  std::vector<std::unique_ptr<Decoder>> items_;
};

}  // namespace

int byte_fallback_value(std::string_view t) {
  // HF: len 6, "<0x" ... ">", and u8::from_str_radix(t[3..5], 16) (which accepts a leading '+').
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
  if (t[3] == '+') {
    int d = hex_digit(t[4]);
    return d;
  }
  int hi = hex_digit(t[3]), lo = hex_digit(t[4]);
  if (hi < 0 || lo < 0) return -1;
  return hi * 16 + lo;
}

std::unique_ptr<Decoder> make_decoder(const json& spec, const std::string& where) {
  PCM_CHECK(spec.is_object(), "{}: expected an object, got {}", where, spec.dump());
  PCM_CHECK(spec.contains("type") && spec["type"].is_string(), "{}: missing \"type\"", where);
  const auto& type = spec["type"].get_ref<const std::string&>();
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Metaspace") {
    std::string rep;
    utf8_append(rep, spec_char(spec, "replacement", where, 0x2581));
    bool prepend = spec_prepend_scheme(spec, where) != PrependScheme::Never;
    if (spec.contains("add_prefix_space") && spec["add_prefix_space"].is_boolean() && !spec["add_prefix_space"].get<bool>()) {
      prepend = false;
    }
    return std::make_unique<MetaspaceDecoder>(rep, prepend);
  }
  if (type == "Strip") {
    uint32_t content = spec_char(spec, "content", where, ' ');
    auto start = json_int_or(spec, "start", 0), stop = json_int_or(spec, "stop", 0);
    PCM_CHECK(start >= 0 && stop >= 0, "{}: start/stop must be non-negative", where);
    return std::make_unique<StripDecoder>(content, static_cast<size_t>(start), static_cast<size_t>(stop));
  }
  if (type == "Replace") {
    PCM_CHECK(spec.contains("pattern"), "{}: Replace needs \"pattern\"", where);
    PCM_CHECK(spec.contains("content") && spec["content"].is_string(), "{}: Replace needs a string \"content\"", where);
    return std::make_unique<ReplaceDecoder>(make_pattern(spec["pattern"], where), spec["content"].get<std::string>());
  }
  if (type == "BPEDecoder") return std::make_unique<BpeDecoder>(json_string_or(spec, "suffix", "</w>"));
  if (type == "Sequence") {
    PCM_CHECK(spec.contains("decoders") && spec["decoders"].is_array(), "{}: Sequence needs a \"decoders\" list", where);
    std::vector<std::unique_ptr<Decoder>> items;
    size_t i = 0;
    for (const auto& child : spec["decoders"]) items.push_back(make_decoder(child, fmt::format("{}.decoders[{}]", where, i++)));
    return std::make_unique<DecoderSequence>(std::move(items));
  }
  fail("{}: unsupported decoder type \"{}\" (supported: ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace, "
       "BPEDecoder, Sequence)", where, type);
}

}  // namespace pcm
