#include "eval/latex_expr.h"

#include <cctype>
#include <map>

namespace pcm::eval {

using GiNaC::ex;

const GiNaC::symbol& shared_symbol(const std::string& name) {
  static std::map<std::string, GiNaC::symbol> symbols;
  auto it = symbols.find(name);
  if (it == symbols.end()) it = symbols.emplace(name, GiNaC::symbol(name)).first;
  return it->second;
}

namespace {

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  ex parse() {
    ex e = expr(0);
    skip();
    if (pos_ != s_.size()) throw ParseError("unexpected '" + std::string(s_.substr(pos_, 8)) + "'");
    return e;
  }

 private:
  void skip() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  bool eat(std::string_view t) {
    skip();
    if (s_.substr(pos_, t.size()) == t) {
      // A macro must not be a prefix of a longer one (\pi vs \pitchfork).
      if (t[0] == '\\' && pos_ + t.size() < s_.size() && std::isalpha(static_cast<unsigned char>(s_[pos_ + t.size()])) &&
          std::isalpha(static_cast<unsigned char>(t.back())))
        return false;
      pos_ += t.size();
      return true;
    }
    return false;
  }
  char peek() {
    skip();
    return pos_ < s_.size() ? s_[pos_] : '\0';
  }
  void depth_check(int d) {
    if (d > kMaxDepth) throw ParseError("expression nested too deeply");
  }

  ex expr(int d) {
    depth_check(d);
    ex e;
    if (eat("-")) e = -term(d + 1);
    else {
      eat("+");
      e = term(d + 1);
    }
    while (true) {
      if (eat("+")) e = e + term(d + 1);
      else if (eat("-")) e = e - term(d + 1);
      else if (eat("\\pm")) throw ParseError("\\pm");
      else return e;
    }
  }

  bool starts_primary() {
    char c = peek();
    if (c == '\0') return false;
    if (std::isdigit(static_cast<unsigned char>(c)) || std::isalpha(static_cast<unsigned char>(c)) || c == '(' ||
        c == '{' || c == '.')
      return true;
    if (c == '\\') {
      for (std::string_view m : {"\\cdot", "\\times", "\\div", "\\right", "\\cup", "\\le", "\\ge", "\\pm", "\\infty"})
        if (s_.substr(pos_, m.size()) == m) return false;
      return true;
    }
    return false;
  }

  ex term(int d) {
    depth_check(d);
    ex e = unary(d + 1);
    while (true) {
      if (eat("\\cdot") || eat("\\times") || eat("*")) e = e * unary(d + 1);
      else if (eat("\\div") || eat("/")) e = e / unary(d + 1);
      else if (starts_primary()) e = e * unary(d + 1);  // implicit multiplication
      else return e;
    }
  }

  ex unary(int d) {
    if (eat("-")) return -unary(d + 1);
    if (eat("+")) return unary(d + 1);
    return power(d + 1);
  }

  ex power(int d) {
    depth_check(d);
    ex base = primary(d + 1);
    while (eat("^")) {
      ex exponent = (peek() == '{' || peek() == '(') ? primary(d + 1) : single(d + 1);
      if (GiNaC::is_a<GiNaC::numeric>(exponent)) {
        const auto& n = GiNaC::ex_to<GiNaC::numeric>(exponent);
        if (n.is_integer() && GiNaC::abs(n) > kMaxExponent) throw ParseError("exponent too large");
      }
      base = GiNaC::pow(base, exponent);
    }
    if (eat("!")) {
      if (!GiNaC::is_a<GiNaC::numeric>(base) || !GiNaC::ex_to<GiNaC::numeric>(base).is_nonneg_integer() ||
          GiNaC::ex_to<GiNaC::numeric>(base) > 100)
        throw ParseError("factorial of a non-integer");
      base = GiNaC::factorial(GiNaC::ex_to<GiNaC::numeric>(base));
    }
    return base;
  }

  // One digit or letter (x^2, 2^n) after ^ without braces.
  ex single(int d) {
    skip();
    if (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) {
      ++pos_;
      return GiNaC::numeric(s_[pos_ - 1] - '0');
    }
    return primary(d);
  }

  ex group(int d) {  // {…}
    if (!eat("{")) throw ParseError("expected '{'");
    ex e = expr(d + 1);
    if (!eat("}")) throw ParseError("expected '}'");
    return e;
  }

  ex number() {
    skip();
    size_t start = pos_;
    std::string digits;
    size_t frac = 0;
    bool dot = false;
    while (pos_ < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[pos_])) || (s_[pos_] == '.' && !dot))) {
      if (s_[pos_] == '.') {
        // "3." at the end, or "3.\ldots": not part of the number
        if (pos_ + 1 >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[pos_ + 1]))) break;
        dot = true;
      } else {
        digits.push_back(s_[pos_]);
        if (dot) ++frac;
      }
      ++pos_;
    }
    if (digits.empty() || digits.size() > 60) throw ParseError("bad number at " + std::to_string(start));
    GiNaC::numeric n(digits.c_str());  // an exact integer
    for (size_t k = 0; k < frac; ++k) n = n / 10;
    return n;
  }

  ex primary(int d) {
    depth_check(d);
    skip();
    if (pos_ >= s_.size()) throw ParseError("unexpected end");
    char c = s_[pos_];
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') {
      ex n = number();
      // Mixed number: 3\frac{1}{2} = 3 + 1/2.
      size_t save = pos_;
      if (eat("\\frac")) {
        ex num = peek() == '{' ? group(d + 1) : single(d + 1);
        ex den = peek() == '{' ? group(d + 1) : single(d + 1);
        if (GiNaC::is_a<GiNaC::numeric>(num) && GiNaC::is_a<GiNaC::numeric>(den) && GiNaC::is_a<GiNaC::numeric>(n))
          return n + num / den;
        return n * (num / den);
      }
      pos_ = save;
      return n;
    }
    if (c == '(') {
      ++pos_;
      ex e = expr(d + 1);
      if (!eat(")")) throw ParseError("expected ')'");
      return e;
    }
    if (c == '{') return group(d + 1);
    if (c == '\\') {
      if (eat("\\frac")) {  // \frac{a}{b}, also \frac12
        ex num = peek() == '{' ? group(d + 1) : single(d + 1);
        ex den = peek() == '{' ? group(d + 1) : single(d + 1);
        if (den.is_zero()) throw ParseError("division by zero");
        return num / den;
      }
      if (eat("\\sqrt")) {
        if (eat("[")) {
          ex n = expr(d + 1);
          if (!eat("]")) throw ParseError("expected ']'");
          ex arg = peek() == '{' ? group(d + 1) : single(d + 1);
          return GiNaC::pow(arg, 1 / n);
        }
        ex arg = peek() == '{' ? group(d + 1) : single(d + 1);
        return GiNaC::sqrt(arg);
      }
      if (eat("\\pi")) return GiNaC::Pi;
      if (eat("\\infty")) throw ParseError("infinity");
      struct Fn { std::string_view name; ex (*f)(const ex&); };
      static const Fn fns[] = {{"\\sin", [](const ex& x) -> ex { return GiNaC::sin(x); }},
                               {"\\cos", [](const ex& x) -> ex { return GiNaC::cos(x); }},
                               {"\\tan", [](const ex& x) -> ex { return GiNaC::tan(x); }},
                               {"\\ln", [](const ex& x) -> ex { return GiNaC::log(x); }},
                               {"\\log", [](const ex& x) -> ex { return GiNaC::log(x); }},
                               {"\\exp", [](const ex& x) -> ex { return GiNaC::exp(x); }}};
      for (const auto& f : fns)
        if (eat(f.name)) return f.f(power(d + 1));
      static const char* greek[] = {"\\alpha", "\\beta", "\\gamma", "\\theta", "\\phi", "\\lambda", "\\mu", "\\omega"};
      for (const char* g : greek)
        if (eat(g)) return shared_symbol(g + 1);
      throw ParseError("unsupported macro at '" + std::string(s_.substr(pos_, 10)) + "'");
    }
    if (std::isalpha(static_cast<unsigned char>(c))) {
      ++pos_;
      std::string name(1, c);
      if (pos_ < s_.size() && s_[pos_] == '_') {  // x_1, a_{n}
        ++pos_;
        if (pos_ < s_.size() && s_[pos_] == '{') {
          size_t close = s_.find('}', pos_);
          if (close == std::string_view::npos) throw ParseError("unclosed subscript");
          name += '_';  // appended in two steps: "_" + string trips GCC 12's -Wrestrict false positive
          name += s_.substr(pos_ + 1, close - pos_ - 1);
          pos_ = close + 1;
        } else if (pos_ < s_.size()) {
          name += '_';
          name += s_[pos_++];
        }
      }
      if (name == "e") return GiNaC::exp(ex(1));
      if (name == "i") return GiNaC::I;
      return shared_symbol(name);
    }
    throw ParseError("unexpected '" + std::string(1, c) + "'");
  }

  std::string_view s_;
  size_t pos_ = 0;
};

}  // namespace

GiNaC::ex parse_latex_expr(std::string_view latex) {
  if (latex.size() > kMaxExprChars) throw ParseError("answer too long to parse");
  if (latex.empty()) throw ParseError("empty");
  return Parser(latex).parse();
}

}  // namespace pcm::eval
