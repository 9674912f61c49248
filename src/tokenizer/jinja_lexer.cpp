#include "tokenizer/jinja_lexer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>

#include "tokenizer/jinja_strings.h"

namespace pcm::jinja {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha_ascii(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }

class Lexer {
 public:
  explicit Lexer(std::string source) : src_(std::move(source)) {}

  std::vector<Token> run() {
    size_t n = src_.size();
    while (pos_ < n) {
      size_t tp = find_tag_start(pos_);
      if (tp == std::string::npos) {
        emit_data(src_.substr(pos_), line_);
        count_lines(pos_, n);
        pos_ = n;
        break;
      }
      char kind = src_[tp + 1];
      size_t raw_end = kind == '%' ? match_raw_begin(tp) : std::string::npos;
      size_t after = tp + 2;
      char sign = 0;
      if (after < n && (src_[after] == '-' || src_[after] == '+')) sign = src_[after];
      std::string text = src_.substr(pos_, tp - pos_);
      apply_strip(text, sign, kind != '{');
      emit_data(std::move(text), line_);
      count_lines(pos_, tp);
      pos_ = tp;
      if (raw_end != std::string::npos) {
        lex_raw(raw_end);
      } else if (kind == '#') {
        lex_comment(after + (sign ? 1 : 0));
      } else {
        lex_tag(kind == '%', after + (sign ? 1 : 0));
      }
    }
    Token eof;
    eof.type = Tok::Eof;
    eof.line = line_;
    out_.push_back(eof);
    return std::move(out_);
  }

 private:
  std::string src_;
  size_t pos_ = 0;
  int line_ = 1;
  bool line_starting_ = true;
  std::vector<Token> out_;

  [[noreturn]] void fail(const std::string& msg) const { throw SyntaxError{line_, msg}; }

  void count_lines(size_t from, size_t to) { line_ += static_cast<int>(std::count(src_.begin() + from, src_.begin() + to, '\n')); }

  size_t find_tag_start(size_t from) const {
    for (size_t k = src_.find('{', from); k != std::string::npos; k = src_.find('{', k + 1)) {
      if (k + 1 < src_.size() && (src_[k + 1] == '{' || src_[k + 1] == '%' || src_[k + 1] == '#')) return k;
    }
    return std::string::npos;
  }

  // Python \s at byte position k (Unicode whitespace); returns its byte length or 0.
  size_t ws_len(size_t k) const {
    if (k >= src_.size()) return 0;
    auto c = static_cast<unsigned char>(src_[k]);
    if (c < 0x80) return py_isspace(c) ? 1 : 0;
    size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    if (k + len > src_.size()) return 0;
    std::u32string u = utf8_decode(std::string_view(src_).substr(k, len));
    return u.size() == 1 && py_isspace(u[0]) ? len : 0;
  }
  size_t skip_ws(size_t k) const {
    while (size_t l = ws_len(k)) k += l;
    return k;
  }
  bool starts_with(size_t k, std::string_view s) const { return std::string_view(src_).substr(k, s.size()) == s; }

  void emit_data(std::string text, int line) {
    if (text.empty()) return;
    Token t;
    t.type = Tok::Data;
    t.line = line;
    t.text = std::move(text);
    out_.push_back(std::move(t));
  }
  void emit(Tok type, int line, std::string text = {}) {
    Token t;
    t.type = type;
    t.line = line;
    t.text = std::move(text);
    out_.push_back(std::move(t));
  }

  // `-` strips all whitespace before the tag; otherwise lstrip_blocks removes the spaces and tabs
  // between a line start and a block or comment tag.
  void apply_strip(std::string& text, char sign, bool lstrip_applies) const {
    if (sign == '-') {
      text = py_strip(text, false, true);
    } else if (sign != '+' && lstrip_applies) {
      size_t nl = text.rfind('\n');
      size_t l = nl == std::string::npos ? 0 : nl + 1;
      if ((l > 0 || line_starting_) && text.size() > l) {
        std::u32string tail = utf8_decode(std::string_view(text).substr(l));
        if (std::all_of(tail.begin(), tail.end(), [](char32_t c) { return py_isspace(c); })) text.resize(l);
      }
    }
  }

  // `{%(-|+|)\s*raw\s*(-%}\s*|%})` at tp: returns the end of the match, or npos.
  size_t match_raw_begin(size_t tp) const {
    size_t k = tp + 2;
    if (k < src_.size() && (src_[k] == '-' || src_[k] == '+')) ++k;
    k = skip_ws(k);
    if (!starts_with(k, "raw")) return std::string::npos;
    k = skip_ws(k + 3);
    if (starts_with(k, "-%}")) return skip_ws(k + 3);
    if (starts_with(k, "%}")) return k + 2;
    return std::string::npos;
  }

  void lex_raw(size_t body_start) {
    count_lines(pos_, body_start);
    line_starting_ = src_[body_start - 1] == '\n';
    for (size_t k = src_.find("{%", body_start); k != std::string::npos; k = src_.find("{%", k + 1)) {
      size_t p = k + 2;
      char sign = 0;
      if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) sign = src_[p++];
      p = skip_ws(p);
      if (!starts_with(p, "endraw")) continue;
      p = skip_ws(p + 6);
      size_t end;
      if (starts_with(p, "+%}")) {
        end = p + 3;
      } else if (starts_with(p, "-%}")) {
        end = skip_ws(p + 3);
      } else if (starts_with(p, "%}")) {
        end = p + 2;
        if (end < src_.size() && src_[end] == '\n') ++end;
      } else {
        continue;
      }
      std::string text = src_.substr(body_start, k - body_start);
      apply_strip(text, sign, true);
      emit_data(std::move(text), line_);
      count_lines(body_start, end);
      line_starting_ = src_[end - 1] == '\n';
      pos_ = end;
      return;
    }
    fail("Missing end of raw directive");
  }

  void lex_comment(size_t body_start) {
    size_t j = src_.find("#}", body_start);
    if (j == std::string::npos) fail("Missing end of comment tag");
    char sign = 0;
    if (j > body_start && (src_[j - 1] == '-' || src_[j - 1] == '+')) sign = src_[j - 1];
    size_t end = j + 2;
    if (sign == '-') {
      end = skip_ws(end);
    } else if (sign != '+' && end < src_.size() && src_[end] == '\n') {
      ++end;
    }
    count_lines(pos_, end);
    line_starting_ = src_[end - 1] == '\n';
    pos_ = end;
  }

  void lex_tag(bool block, size_t p) {
    emit(block ? Tok::BlockBegin : Tok::VarBegin, line_);
    count_lines(pos_, p);
    pos_ = p;
    std::vector<char> balance;
    size_t n = src_.size();
    while (pos_ < n) {
      if (balance.empty()) {
        size_t end = std::string::npos;
        if (block) {
          if (starts_with(pos_, "+%}")) {
            end = pos_ + 3;
          } else if (starts_with(pos_, "-%}")) {
            end = skip_ws(pos_ + 3);
          } else if (starts_with(pos_, "%}")) {
            end = pos_ + 2;
            if (end < n && src_[end] == '\n') ++end;
          }
        } else {
          if (starts_with(pos_, "-}}")) {
            end = skip_ws(pos_ + 3);
          } else if (starts_with(pos_, "}}")) {
            end = pos_ + 2;
          }
        }
        if (end != std::string::npos) {
          emit(block ? Tok::BlockEnd : Tok::VarEnd, line_);
          count_lines(pos_, end);
          line_starting_ = src_[end - 1] == '\n';
          pos_ = end;
          return;
        }
      }
      if (size_t w = ws_len(pos_)) {
        size_t e = skip_ws(pos_ + w);
        count_lines(pos_, e);
        pos_ = e;
        continue;
      }
      char c = src_[pos_];
      if (is_digit(c)) {
        lex_number();
        continue;
      }
      if (is_alpha_ascii(c) || static_cast<unsigned char>(c) >= 0x80) {
        lex_name();
        continue;
      }
      if (c == '\'' || c == '"') {
        lex_string();
        continue;
      }
      lex_operator(balance);
    }
    // End of template inside a tag: the parser reports it.
  }

  size_t scan_digits(size_t k) const {  // (\d+_)*\d+ ; returns end or k when no digit
    size_t start = k;
    while (k < src_.size() && is_digit(src_[k])) {
      while (k < src_.size() && is_digit(src_[k])) ++k;
      if (k + 1 < src_.size() && src_[k] == '_' && is_digit(src_[k + 1])) ++k;
    }
    return k == start ? start : k;
  }

  void lex_number() {
    size_t start = pos_;
    bool prev_dot = start > 0 && src_[start - 1] == '.';
    size_t n = src_.size();
    // float: digits then (fraction? exponent | fraction)
    if (!prev_dot) {
      size_t k = scan_digits(start);
      size_t frac_end = k;
      bool has_frac = false;
      if (k < n && src_[k] == '.' && k + 1 < n && is_digit(src_[k + 1])) {
        frac_end = scan_digits(k + 1);
        has_frac = true;
      }
      size_t e = frac_end;
      bool has_exp = false;
      if (e < n && (src_[e] == 'e' || src_[e] == 'E')) {
        size_t q = e + 1;
        if (q < n && (src_[q] == '+' || src_[q] == '-')) ++q;
        if (q < n && is_digit(src_[q])) {
          e = scan_digits(q);
          has_exp = true;
        }
      }
      if (has_exp || has_frac) {
        size_t end = has_exp ? e : frac_end;
        std::string text;
        for (size_t q = start; q < end; ++q)
          if (src_[q] != '_') text.push_back(src_[q]);
        Token t;
        t.type = Tok::Float;
        t.line = line_;
        t.text = src_.substr(start, end - start);
        t.fval = std::strtod(text.c_str(), nullptr);
        out_.push_back(std::move(t));
        pos_ = end;
        return;
      }
    }
    // integer
    size_t k = start;
    int base = 10;
    if (src_[k] == '0' && k + 1 < n && std::string("bBoOxX").find(src_[k + 1]) != std::string::npos) {
      char b = static_cast<char>(src_[k + 1] | 0x20);
      base = b == 'b' ? 2 : b == 'o' ? 8 : 16;
      auto ok = [&](char ch) {
        if (base == 2) return ch == '0' || ch == '1';
        if (base == 8) return ch >= '0' && ch <= '7';
        return is_digit(ch) || ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f');
      };
      size_t q = k + 2;
      size_t last = q;
      while (q < n) {
        if (q + 1 < n && src_[q] == '_' && ok(src_[q + 1])) {
          q += 2;
          last = q;
        } else if (ok(src_[q])) {
          last = ++q;
        } else {
          break;
        }
      }
      if (last > k + 2) {
        finish_int(start, last, base, 2);
        return;
      }
      // "0" followed by a letter: fall through to the decimal zero rule
    }
    size_t q = k + 1;
    if (src_[k] == '0') {
      while (q < n && (src_[q] == '0' || (src_[q] == '_' && q + 1 < n && src_[q + 1] == '0'))) ++q;
    } else {
      while (q < n && (is_digit(src_[q]) || (src_[q] == '_' && q + 1 < n && is_digit(src_[q + 1])))) ++q;
    }
    finish_int(start, q, 10, 0);
  }

  void finish_int(size_t start, size_t end, int base, size_t prefix) {
    std::string digits;
    for (size_t q = start + prefix; q < end; ++q)
      if (src_[q] != '_') digits.push_back(src_[q]);
    errno = 0;
    char* stop = nullptr;
    long long v = std::strtoll(digits.c_str(), &stop, base);
    if (errno == ERANGE) fail(fmt::format("integer literal {} is too large", src_.substr(start, end - start)));
    Token t;
    t.type = Tok::Int;
    t.line = line_;
    t.text = src_.substr(start, end - start);
    t.ival = v;
    out_.push_back(std::move(t));
    pos_ = end;
  }

  void lex_name() {
    size_t k = pos_;
    size_t n = src_.size();
    bool first = true;
    while (k < n) {
      auto c = static_cast<unsigned char>(src_[k]);
      if (c < 0x80) {
        if (is_alpha_ascii(static_cast<char>(c)) || (!first && is_digit(static_cast<char>(c)))) {
          ++k;
          first = false;
          continue;
        }
        break;
      }
      size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
      std::u32string u = utf8_decode(std::string_view(src_).substr(k, std::min(len, n - k)));
      if (u.size() != 1 || u[0] == 0xFFFD || !(first ? py_isalpha(u[0]) : py_isalnum(u[0]))) break;
      k += len;
      first = false;
    }
    if (k == pos_) fail(fmt::format("unexpected char {} at {}", char_repr(pos_), pos_));
    emit(Tok::Name, line_, src_.substr(pos_, k - pos_));
    pos_ = k;
  }

  std::string char_repr(size_t k) const {
    auto c = static_cast<unsigned char>(src_[k]);
    size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    return py_repr_string(std::string_view(src_).substr(k, std::min(len, src_.size() - k)));
  }

  void lex_string() {
    char q = src_[pos_];
    size_t k = pos_ + 1;
    size_t n = src_.size();
    while (k < n && src_[k] != q) {
      if (src_[k] == '\\') ++k;
      ++k;
    }
    if (k >= n) fail("unterminated string literal");
    std::string raw = src_.substr(pos_ + 1, k - pos_ - 1);
    Token t;
    t.type = Tok::String;
    t.line = line_;
    t.text = unescape(raw);
    out_.push_back(std::move(t));
    count_lines(pos_, k + 1);
    pos_ = k + 1;
  }

  // Python's unicode-escape decoding of a string literal body.
  std::string unescape(const std::string& raw) const {
    std::string out;
    size_t n = raw.size();
    auto hex = [&](size_t at, size_t count) -> char32_t {
      if (at + count > n) fail("truncated escape sequence in string literal");
      char32_t v = 0;
      for (size_t q = at; q < at + count; ++q) {
        char ch = raw[q];
        int d = is_digit(ch) ? ch - '0' : ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f') ? (ch | 0x20) - 'a' + 10 : -1;
        if (d < 0) fail("truncated escape sequence in string literal");
        v = v * 16 + static_cast<char32_t>(d);
      }
      return v;
    };
    for (size_t k = 0; k < n; ++k) {
      char c = raw[k];
      if (c != '\\' || k + 1 >= n) {
        out.push_back(c);
        continue;
      }
      char e = raw[++k];
      switch (e) {
        case '\n': break;
        case '\\': out.push_back('\\'); break;
        case '\'': out.push_back('\''); break;
        case '"': out.push_back('"'); break;
        case 'a': out.push_back('\a'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'v': out.push_back('\v'); break;
        case 'x':
        case 'u':
        case 'U': {
          size_t count = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          char32_t v = hex(k + 1, count);
          if (v > 0x10FFFF) fail("illegal Unicode character in string literal");
          if (v >= 0xD800 && v <= 0xDFFF) fail("surrogate code point in string literal");
          utf8_append(out, v);
          k += count;
          break;
        }
        case 'N': fail("\\N{...} escapes are not supported in string literals");
        default:
          if (e >= '0' && e <= '7') {
            char32_t v = static_cast<char32_t>(e - '0');
            for (int d = 0; d < 2 && k + 1 < n && raw[k + 1] >= '0' && raw[k + 1] <= '7'; ++d)
              v = v * 8 + static_cast<char32_t>(raw[++k] - '0');
            utf8_append(out, v);
          } else {
            out.push_back('\\');
            out.push_back(e);
          }
      }
    }
    return out;
  }

  void lex_operator(std::vector<char>& balance) {
    static const char* kOps[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]", "(",
                                 ")",  "{",  "}",  ">",  "<",  "=",  ".", ":", "|", ",", ";"};
    for (const char* op : kOps) {
      if (!starts_with(pos_, op)) continue;
      std::string s(op);
      if (s == "{" || s == "(" || s == "[") {
        balance.push_back(s == "{" ? '}' : s == "(" ? ')' : ']');
      } else if (s == "}" || s == ")" || s == "]") {
        if (balance.empty()) fail(fmt::format("unexpected '{}'", s));
        char expected = balance.back();
        balance.pop_back();
        if (expected != s[0]) fail(fmt::format("unexpected '{}', expected '{}'", s, expected));
      }
      emit(Tok::Op, line_, s);
      pos_ += s.size();
      return;
    }
    fail(fmt::format("unexpected char {} at {}", char_repr(pos_), pos_));
  }
};

std::string normalize_source(std::string_view source) {
  std::string s;
  s.reserve(source.size());
  for (size_t k = 0; k < source.size(); ++k) {
    char c = source[k];
    if (c == '\r') {
      s.push_back('\n');
      if (k + 1 < source.size() && source[k + 1] == '\n') ++k;
    } else {
      s.push_back(c);
    }
  }
  if (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

}  // namespace

std::vector<Token> tokenize(std::string_view source) { return Lexer(normalize_source(source)).run(); }

std::string describe_token(const Token& t) {
  switch (t.type) {
    case Tok::Data: return "template data / text";
    case Tok::VarBegin: return "begin of print statement";
    case Tok::VarEnd: return "end of print statement";
    case Tok::BlockBegin: return "begin of statement block";
    case Tok::BlockEnd: return "end of statement block";
    case Tok::Name: return t.text;
    case Tok::String: return "string";
    case Tok::Int: return "integer";
    case Tok::Float: return "float";
    case Tok::Op: return t.text;
    case Tok::Eof: return "end of template";
  }
  return "token";
}

}  // namespace pcm::jinja
