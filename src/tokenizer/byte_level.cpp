#include "tokenizer/byte_level.h"

#include <array>

#include "tokenizer/regex.h"
#include "tokenizer/utf8.h"

namespace pcm {

namespace {

struct ByteTables {
  std::array<std::string, 256> chars;    // byte -> UTF-8 of its character
  std::array<int16_t, 512> bytes;        // code point (< 512) -> byte, -1 if none
  ByteTables() {
    bytes.fill(-1);
    auto printable = [](int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); };
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      uint32_t cp = printable(b) ? static_cast<uint32_t>(b) : 256u + static_cast<uint32_t>(n++);
      utf8_append(chars[static_cast<size_t>(b)], cp);
      bytes[cp] = static_cast<int16_t>(b);
    }
  }
};

const ByteTables& tables() {
  static const ByteTables t;
  return t;
}

}  // namespace

std::string_view byte_level_char(uint8_t b) { return tables().chars[b]; }

int byte_level_byte(uint32_t cp) { return cp < 512 ? tables().bytes[cp] : -1; }

std::string byte_level_encode(std::string_view s, size_t zero_prefix_in, size_t* zero_prefix_out) {
  const auto& t = tables();
  std::string out;
  out.reserve(s.size() * 2);
  size_t zp = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const std::string& c = t.chars[static_cast<uint8_t>(s[i])];
    out += c;
    if (i < zero_prefix_in) zp += c.size();
  }
  if (zero_prefix_out) *zero_prefix_out = zp;
  return out;
}

const Regex& gpt2_regex() {
  static const Regex re = Regex::onig(
      R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)", "ByteLevel pre-tokenizer regex");
  return re;
}

}  // namespace pcm
