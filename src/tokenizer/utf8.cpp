#include "tokenizer/utf8.h"

namespace pcm {

namespace {

// Length of the valid (possibly incomplete) sequence starting at s[i] and whether it is complete:
// returns the number of bytes that belong to the longest valid prefix of a sequence (>= 1 for a
// valid lead, 0 for a byte that can never start a sequence), and sets `complete`.
size_t valid_subpart(std::string_view s, size_t i, bool* complete) {
  auto b0 = static_cast<uint8_t>(s[i]);
  *complete = false;
  if (b0 < 0x80) {
    *complete = true;
    return 1;
  }
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  size_t k = 1;
  for (; k < need && i + k < s.size(); ++k) {
    auto b = static_cast<uint8_t>(s[i + k]);
    uint8_t l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (b < l || b > h) return k;
  }
  *complete = k == need;
  return k;
}

}  // namespace

uint32_t utf8_decode_last(std::string_view s, size_t end, size_t* len) {
  size_t start = end - 1;
  while (start > 0 && (static_cast<uint8_t>(s[start]) & 0xC0) == 0x80) --start;
  return utf8_decode(s, start, len);
}

void utf8_append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::optional<size_t> utf8_first_invalid(std::string_view s) {
  size_t i = 0, n = s.size();
  while (i < n) {
    if (static_cast<uint8_t>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    bool complete;
    size_t k = valid_subpart(s, i, &complete);
    if (!complete) return i;
    i += k;
  }
  return std::nullopt;
}

size_t utf8_complete_prefix(std::string_view s) {
  // Only the last 3 bytes can belong to an incomplete trailing sequence.
  size_t n = s.size();
  size_t start = n >= 3 ? n - 3 : 0;
  for (size_t i = start; i < n; ++i) {
    auto b = static_cast<uint8_t>(s[i]);
    if ((b & 0xC0) == 0x80) continue;
    bool complete;
    size_t k = valid_subpart(s, i, &complete);
    if (k > 0 && !complete && i + k == n) return i;
  }
  return n;
}

std::string utf8_lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0, n = s.size();
  while (i < n) {
    size_t run = i;
    while (run < n && static_cast<uint8_t>(s[run]) < 0x80) ++run;
    out.append(s.data() + i, run - i);
    i = run;
    if (i >= n) break;
    bool complete;
    size_t k = valid_subpart(s, i, &complete);
    if (complete) {
      out.append(s.data() + i, k);
      i += k;
    } else {
      out += kReplacementChar;
      i += k == 0 ? 1 : k;
    }
  }
  return out;
}

size_t utf8_count(std::string_view s) {
  size_t count = 0;
  for (char c : s) count += (static_cast<uint8_t>(c) & 0xC0) != 0x80;
  return count;
}

}  // namespace pcm
