#include "tokenizer/jinja_strings.h"

#include <utf8proc.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace pcm::jinja {

namespace {

// Decodes one code point at s[i]; advances i. Invalid sequences yield U+FFFD and consume one byte.
char32_t decode_one(std::string_view s, size_t& i) {
  auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  int len = 0;
  char32_t cp = 0;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2;
    cp = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3;
    cp = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4;
    cp = b0 & 0x07;
  } else {
    ++i;
    return 0xFFFD;
  }
  if (i + len > s.size()) {
    ++i;
    return 0xFFFD;
  }
  for (int k = 1; k < len; ++k) {
    auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) {
      ++i;
      return 0xFFFD;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  static const char32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++i;
    return 0xFFFD;
  }
  i += len;
  return cp;
}

int category(char32_t c) { return utf8proc_category(static_cast<utf8proc_int32_t>(c)); }

bool is_cased(char32_t c) {
  int cat = category(c);
  return cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT ||
         utf8proc_islower(static_cast<utf8proc_int32_t>(c)) || utf8proc_isupper(static_cast<utf8proc_int32_t>(c));
}

// Full (one-to-many) mappings Python applies that utf8proc's simple mapping lacks.
bool special_upper(char32_t c, std::string& out) {
  switch (c) {
    case 0xDF: out += "SS"; return true;
    case 0xFB00: out += "FF"; return true;
    case 0xFB01: out += "FI"; return true;
    case 0xFB02: out += "FL"; return true;
    case 0xFB03: out += "FFI"; return true;
    case 0xFB04: out += "FFL"; return true;
    case 0xFB05: case 0xFB06: out += "ST"; return true;
    default: return false;
  }
}

char32_t to_upper(char32_t c) { return static_cast<char32_t>(utf8proc_toupper(static_cast<utf8proc_int32_t>(c))); }
char32_t to_lower(char32_t c) { return static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))); }
char32_t to_title(char32_t c) { return static_cast<char32_t>(utf8proc_totitle(static_cast<utf8proc_int32_t>(c))); }

bool in_chars(char32_t c, const std::u32string& set) { return set.find(c) != std::u32string::npos; }

size_t cp_index_of_byte(std::string_view s, size_t byte_pos) { return utf8_length(s.substr(0, byte_pos)); }

}  // namespace

std::u32string utf8_decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) out.push_back(decode_one(s, i));
  return out;
}

void utf8_append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string utf8_encode(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) utf8_append(out, c);
  return out;
}

bool utf8_valid(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t before = i;
    char32_t c = decode_one(s, i);
    if (c == 0xFFFD) {
      // A literal U+FFFD is three bytes long; an invalid byte is consumed alone.
      if (i - before != 3) return false;
    }
  }
  return true;
}

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

bool py_isspace(char32_t c) {
  if (c <= 0x20) return c == 0x20 || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

std::string py_strip(std::string_view s, bool left, bool right, const std::string* chars) {
  std::u32string u = utf8_decode(s);
  std::u32string set;
  if (chars) set = utf8_decode(*chars);
  auto strip_it = [&](char32_t c) { return chars ? in_chars(c, set) : py_isspace(c); };
  size_t b = 0, e = u.size();
  if (left)
    while (b < e && strip_it(u[b])) ++b;
  if (right)
    while (e > b && strip_it(u[e - 1])) --e;
  return utf8_encode(std::u32string_view(u).substr(b, e - b));
}

std::string py_upper(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    char32_t c = decode_one(s, i);
    if (!special_upper(c, out)) utf8_append(out, to_upper(c));
  }
  return out;
}

std::string py_lower(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    char32_t c = decode_one(s, i);
    if (c == 0x130) {
      out += "i\xCC\x87";  // İ -> i + combining dot above
      continue;
    }
    utf8_append(out, to_lower(c));
  }
  return out;
}

std::string py_capitalize(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  bool first = true;
  while (i < s.size()) {
    char32_t c = decode_one(s, i);
    if (first) {
      if (c == 0xDF) {
        out += "Ss";
      } else {
        utf8_append(out, to_title(c));
      }
      first = false;
    } else {
      utf8_append(out, to_lower(c));
    }
  }
  return out;
}

std::string py_title(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  bool prev_cased = false;
  while (i < s.size()) {
    char32_t c = decode_one(s, i);
    if (prev_cased) {
      utf8_append(out, to_lower(c));
    } else if (c == 0xDF) {
      out += "Ss";
    } else {
      utf8_append(out, to_title(c));
    }
    prev_cased = is_cased(c);
  }
  return out;
}

std::string py_swapcase(std::string_view s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    char32_t c = decode_one(s, i);
    if (utf8proc_isupper(static_cast<utf8proc_int32_t>(c))) {
      utf8_append(out, to_lower(c));
    } else if (utf8proc_islower(static_cast<utf8proc_int32_t>(c))) {
      if (!special_upper(c, out)) utf8_append(out, to_upper(c));
    } else {
      utf8_append(out, c);
    }
  }
  return out;
}

bool py_is_cased_lower(std::string_view s) {
  bool any = false;
  size_t i = 0;
  while (i < s.size()) {
    char32_t c = decode_one(s, i);
    if (utf8proc_isupper(static_cast<utf8proc_int32_t>(c)) || category(c) == UTF8PROC_CATEGORY_LT) return false;
    if (utf8proc_islower(static_cast<utf8proc_int32_t>(c))) any = true;
  }
  return any;
}

bool py_is_cased_upper(std::string_view s) {
  bool any = false;
  size_t i = 0;
  while (i < s.size()) {
    char32_t c = decode_one(s, i);
    if (utf8proc_islower(static_cast<utf8proc_int32_t>(c)) || category(c) == UTF8PROC_CATEGORY_LT) return false;
    if (utf8proc_isupper(static_cast<utf8proc_int32_t>(c))) any = true;
  }
  return any;
}

bool py_isalpha(char32_t c) {
  int cat = category(c);
  return cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
}

bool py_isdigit(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  return category(c) == UTF8PROC_CATEGORY_ND;
}

bool py_isalnum(char32_t c) {
  int cat = category(c);
  return py_isalpha(c) || (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
}

bool py_isword(char32_t c) { return c == '_' || py_isalnum(c); }

std::vector<std::string> py_split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit) {
  std::vector<std::string> out;
  int64_t budget = maxsplit < 0 ? INT64_MAX : maxsplit;
  if (!sep) {
    std::u32string u = utf8_decode(s);
    size_t i = 0, n = u.size();
    while (budget-- > 0) {
      while (i < n && py_isspace(u[i])) ++i;
      if (i == n) break;
      size_t j = i++;
      while (i < n && !py_isspace(u[i])) ++i;
      out.push_back(utf8_encode(std::u32string_view(u).substr(j, i - j)));
    }
    if (i < n) {
      while (i < n && py_isspace(u[i])) ++i;
      if (i != n) out.push_back(utf8_encode(std::u32string_view(u).substr(i)));
    }
    return out;
  }
  size_t pos = 0;
  while (budget-- > 0) {
    size_t k = s.find(*sep, pos);
    if (k == std::string_view::npos) break;
    out.emplace_back(s.substr(pos, k - pos));
    pos = k + sep->size();
  }
  out.emplace_back(s.substr(pos));
  return out;
}

std::vector<std::string> py_rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit) {
  std::vector<std::string> out;
  int64_t budget = maxsplit < 0 ? INT64_MAX : maxsplit;
  if (!sep) {
    std::u32string u = utf8_decode(s);
    int64_t i = static_cast<int64_t>(u.size()) - 1;
    while (budget-- > 0) {
      while (i >= 0 && py_isspace(u[i])) --i;
      if (i < 0) break;
      int64_t j = i--;
      while (i >= 0 && !py_isspace(u[i])) --i;
      out.push_back(utf8_encode(std::u32string_view(u).substr(i + 1, j - i)));
    }
    if (i >= 0) {
      while (i >= 0 && py_isspace(u[i])) --i;
      if (i >= 0) out.push_back(utf8_encode(std::u32string_view(u).substr(0, i + 1)));
    }
    std::reverse(out.begin(), out.end());
    return out;
  }
  size_t end = s.size();
  while (budget-- > 0) {
    if (end < sep->size()) break;
    size_t k = s.rfind(*sep, end - sep->size());
    if (k == std::string_view::npos) break;
    out.emplace_back(s.substr(k + sep->size(), end - k - sep->size()));
    end = k;
  }
  out.emplace_back(s.substr(0, end));
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<std::string> py_splitlines(std::string_view s, bool keepends) {
  std::u32string u = utf8_decode(s);
  std::vector<std::string> out;
  size_t i = 0, n = u.size();
  while (i < n) {
    size_t j = i;
    while (j < n) {
      char32_t c = u[j];
      if (c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E || c == 0x85 ||
          c == 0x2028 || c == 0x2029)
        break;
      ++j;
    }
    size_t eol = j;
    if (j < n) {
      if (u[j] == '\r' && j + 1 < n && u[j + 1] == '\n') {
        j += 2;
      } else {
        ++j;
      }
      if (keepends) eol = j;
    }
    out.push_back(utf8_encode(std::u32string_view(u).substr(i, eol - i)));
    i = j;
  }
  return out;
}

std::string py_replace(std::string_view s, std::string_view old_s, std::string_view new_s, int64_t count) {
  int64_t budget = count < 0 ? INT64_MAX : count;
  std::string out;
  if (old_s.empty()) {
    size_t i = 0;
    while (i < s.size()) {
      if (budget > 0) {
        out += new_s;
        --budget;
      }
      size_t start = i;
      decode_one(s, i);
      out += s.substr(start, i - start);
    }
    if (budget > 0) out += new_s;
    return out;
  }
  size_t pos = 0;
  while (budget > 0) {
    size_t k = s.find(old_s, pos);
    if (k == std::string_view::npos) break;
    out += s.substr(pos, k - pos);
    out += new_s;
    pos = k + old_s.size();
    --budget;
  }
  out += s.substr(pos);
  return out;
}

int64_t py_find(std::string_view s, std::string_view sub, bool reverse) {
  size_t k = reverse ? s.rfind(sub) : s.find(sub);
  if (k == std::string_view::npos) return -1;
  return static_cast<int64_t>(cp_index_of_byte(s, k));
}

int64_t py_count(std::string_view s, std::string_view sub) {
  if (sub.empty()) return static_cast<int64_t>(utf8_length(s)) + 1;
  int64_t n = 0;
  size_t pos = 0;
  while ((pos = s.find(sub, pos)) != std::string_view::npos) {
    ++n;
    pos += sub.size();
  }
  return n;
}

namespace {

bool py_isprintable(char32_t c) {
  if (c == ' ') return true;
  int cat = category(c);
  switch (cat) {
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_ZS:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
      return false;
    default:
      return true;
  }
}

}  // namespace

std::string py_repr_string(std::string_view s) {
  char quote = '\'';
  if (s.find('\'') != std::string_view::npos && s.find('"') == std::string_view::npos) quote = '"';
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back(quote);
  size_t i = 0;
  char buf[16];
  while (i < s.size()) {
    char32_t c = decode_one(s, i);
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7F) {
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(c));
      out += buf;
    } else if (c < 0x7F) {
      out.push_back(static_cast<char>(c));
    } else if (py_isprintable(c)) {
      utf8_append(out, c);
    } else if (c <= 0xFF) {
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(c));
      out += buf;
    } else if (c <= 0xFFFF) {
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      std::snprintf(buf, sizeof buf, "\\U%08x", static_cast<unsigned>(c));
      out += buf;
    }
  }
  out.push_back(quote);
  return out;
}

std::string py_float_repr(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  std::string out;
  size_t p = 0;
  if (sci[0] == '-') {
    out.push_back('-');
    p = 1;
  }
  size_t epos = sci.find('e');
  std::string digits;
  for (size_t k = p; k < epos; ++k)
    if (sci[k] != '.') digits.push_back(sci[k]);
  int exp10 = std::atoi(sci.c_str() + epos + 1);
  int decpt = exp10 + 1;
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      out += "0.";
      out.append(static_cast<size_t>(-decpt), '0');
      out += digits;
    } else if (static_cast<size_t>(decpt) >= digits.size()) {
      out += digits;
      out.append(static_cast<size_t>(decpt) - digits.size(), '0');
      out += ".0";
    } else {
      out += digits.substr(0, decpt);
      out.push_back('.');
      out += digits.substr(decpt);
    }
  } else {
    out.push_back(digits[0]);
    if (digits.size() > 1) {
      out.push_back('.');
      out += digits.substr(1);
    }
    std::snprintf(buf, sizeof buf, "e%c%02d", exp10 < 0 ? '-' : '+', std::abs(exp10));
    out += buf;
  }
  return out;
}

}  // namespace pcm::jinja
