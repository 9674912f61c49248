// UTF-8 helpers for the tokenizer: strict validation (naming the first bad byte), code point
// iteration, and Rust's `String::from_utf8_lossy` (one U+FFFD per maximal invalid subpart), which
// HF tokenizers' ByteLevel decoder uses.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pcm {

inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

// Length of the sequence a lead byte starts (1 for ASCII and for invalid leads).
inline size_t utf8_seq_len(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  if (lead >= 0xC0) return 2;
  return 1;
}

// Decodes the code point at s[i] of valid UTF-8; `len` receives its byte length.
inline uint32_t utf8_decode(std::string_view s, size_t i, size_t* len) {
  auto b0 = static_cast<uint8_t>(s[i]);
  if (b0 < 0x80) {
    *len = 1;
    return b0;
  }
  size_t n = utf8_seq_len(b0);
  *len = n;
  uint32_t cp = n == 2 ? (b0 & 0x1F) : n == 3 ? (b0 & 0x0F) : (b0 & 0x07);
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3F);
  return cp;
}

// The code point ending at byte `end` (exclusive) of valid UTF-8; `len` receives its length.
uint32_t utf8_decode_last(std::string_view s, size_t end, size_t* len);

void utf8_append(std::string& out, uint32_t cp);

// Offset of the first byte that starts an invalid or truncated sequence, or nullopt if `s` is valid.
std::optional<size_t> utf8_first_invalid(std::string_view s);
inline bool utf8_valid(std::string_view s) { return !utf8_first_invalid(s).has_value(); }

// Length of the longest prefix of `s` that ends on a complete character, i.e. without a trailing
// sequence that more bytes could still complete (used by streaming output).
size_t utf8_complete_prefix(std::string_view s);

// Rust String::from_utf8_lossy: invalid bytes become U+FFFD, one per maximal subpart.
std::string utf8_lossy(std::string_view bytes);

// Number of code points of valid UTF-8.
size_t utf8_count(std::string_view s);

}  // namespace pcm
