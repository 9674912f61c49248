#include "eval/math_grader.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <complex>
#include <map>
#include <mutex>
#include <optional>

#include "eval/latex_expr.h"
#include "eval/latex_normalize.h"
#include "tokenizer/regex.h"

namespace pcm::eval {

namespace {

using Clock = std::chrono::steady_clock;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Top-level pieces separated by `sep` (outside (), [], {}).
std::vector<std::string> split_top(const std::string& s, char sep) {
  std::vector<std::string> out;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '(' || c == '[' || c == '{') ++depth;
    if (c == ')' || c == ']' || c == '}') --depth;
    if (c == sep && depth == 0) {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  out.push_back(s.substr(start));
  for (auto& p : out) {
    size_t a = p.find_first_not_of(' '), b = p.find_last_not_of(' ');
    p = a == std::string::npos ? "" : p.substr(a, b - a + 1);
  }
  return out;
}

// Whether s[0] opens a bracket that closes exactly at the end.
bool wrapped(const std::string& s, char open, char close) {
  if (s.size() < 2 || s.front() != open || s.back() != close) return false;
  int depth = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '(' || s[i] == '[' || s[i] == '{') ++depth;
    if (s[i] == ')' || s[i] == ']' || s[i] == '}') --depth;
    if (depth == 0 && i + 1 < s.size()) return false;
  }
  return true;
}

std::optional<std::string> number_word(const std::string& s) {
  static const std::map<std::string, int> words = {
      {"zero", 0}, {"one", 1}, {"two", 2}, {"three", 3}, {"four", 4}, {"five", 5}, {"six", 6}, {"seven", 7},
      {"eight", 8}, {"nine", 9}, {"ten", 10}, {"eleven", 11}, {"twelve", 12}, {"thirteen", 13}, {"fourteen", 14},
      {"fifteen", 15}, {"sixteen", 16}, {"seventeen", 17}, {"eighteen", 18}, {"nineteen", 19}, {"twenty", 20},
      {"thirty", 30}, {"forty", 40}, {"fifty", 50}, {"sixty", 60}, {"seventy", 70}, {"eighty", 80}, {"ninety", 90},
      {"hundred", 100}, {"thousand", 1000}};
  auto it = words.find(lower(s));
  if (it == words.end()) return std::nullopt;
  return std::to_string(it->second);
}

// 10001_2, 10001_{2}: the digits alone. A base-n answer is its digit string; converting it to base 10
// would accept "17" for a question that asks for base 2.
std::optional<std::string> base_subscript(const std::string& s) {
  static const Regex re = Regex::bytes(R"(\A([0-9A-Za-z]+)_\{?(\d{1,9})\}?\z)");
  const auto m = re.groups(s);
  if (m.empty()) return std::nullopt;
  int base = std::stoi(std::string(Regex::text(s, m[2])));
  if (base < 2 || base > 36) return std::nullopt;
  return std::string(Regex::text(s, m[1]));
}

std::string canonical_scalar(const std::string& s) {
  if (auto w = number_word(s)) return *w;
  if (auto b = base_subscript(s)) return *b;
  return s;
}

std::complex<double> evaluate(const GiNaC::ex& e) {
  GiNaC::ex v = GiNaC::evalf(e);
  if (!GiNaC::is_a<GiNaC::numeric>(v)) throw ParseError("not a number");
  const auto& n = GiNaC::ex_to<GiNaC::numeric>(v);
  return {GiNaC::real(n).to_double(), GiNaC::imag(n).to_double()};
}

bool close_enough(std::complex<double> a, std::complex<double> b, double rel) {
  const double scale = std::max({1e-12, std::abs(a), std::abs(b)});
  return std::abs(a - b) <= std::max(rel, 1e-9) * scale;
}

// Values of two scalar expressions: "symbolic" / "numeric" equality, or nullopt when unparseable.
std::optional<GradeResult> compare_values(const std::string& a, const std::string& b, const MathGradeOptions& o) {
  GiNaC::ex x, y;
  try {
    x = parse_latex_expr(canonical_scalar(a));
    y = parse_latex_expr(canonical_scalar(b));
  } catch (const ParseError&) {
    return std::nullopt;
  } catch (const std::exception&) {
    return std::nullopt;
  }
  try {
    GiNaC::lst free;
    GiNaC::exset syms;
    for (const auto& e : {x, y})
      for (GiNaC::const_preorder_iterator it = e.preorder_begin(); it != e.preorder_end(); ++it)
        if (GiNaC::is_a<GiNaC::symbol>(*it)) syms.insert(*it);
    if (syms.empty()) {
      // Numbers: exact when both are rational, else within tolerance of each other.
      GiNaC::ex d = (x - y);
      if (GiNaC::is_a<GiNaC::numeric>(x) && GiNaC::is_a<GiNaC::numeric>(y) && o.numeric_tolerance == 0.0) {
        bool eq = GiNaC::ex_to<GiNaC::numeric>(x) == GiNaC::ex_to<GiNaC::numeric>(y);
        return GradeResult{eq, eq ? "equal values" : "different values"};
      }
      if (d.expand().normal().is_zero()) return GradeResult{true, "symbolically equal"};
      bool eq = close_enough(evaluate(x), evaluate(y), o.numeric_tolerance > 0 ? o.numeric_tolerance : 1e-9);
      return GradeResult{eq, eq ? "numerically equal" : "different values"};
    }
    if ((x - y).expand().normal().is_zero()) return GradeResult{true, "symbolically equal"};
    // Fallback: evaluate at fixed pseudo-random points (same on every run).
    const double points[3] = {0.5772156649, 1.4142135623, 2.7182818284};
    for (int k = 0; k < 3; ++k) {
      GiNaC::exmap sub;
      int j = 0;
      for (const auto& s : syms) {  // symbol j gets its own point (j was read and incremented unsequenced: UB)
        sub[s] = GiNaC::numeric(points[(k + j) % 3] + 0.137 * j);
        ++j;
      }
      if (!close_enough(evaluate(x.subs(sub)), evaluate(y.subs(sub)), 1e-9)) return GradeResult{false, "different expressions"};
    }
    return GradeResult{true, "equal at random points"};
  } catch (const std::exception&) {
    return std::nullopt;  // e.g. division by zero at a point
  }
}

GradeResult compare(const std::string& p, const std::string& g, const MathGradeOptions& o, Clock::time_point deadline,
                    int depth);

// Element lists: ordered (tuples, intervals, matrix rows) or unordered (sets, root lists).
GradeResult compare_lists(const std::vector<std::string>& ps, const std::vector<std::string>& gs, bool ordered,
                          const MathGradeOptions& o, Clock::time_point deadline, int depth) {
  if (ps.size() != gs.size()) return {false, "different number of elements"};
  if (ordered) {
    for (size_t i = 0; i < ps.size(); ++i)
      if (!compare(ps[i], gs[i], o, deadline, depth + 1).correct) return {false, "element " + std::to_string(i + 1) + " differs"};
    return {true, "all elements equal"};
  }
  std::vector<bool> used(gs.size(), false);
  for (const auto& pe : ps) {
    bool matched = false;
    for (size_t j = 0; j < gs.size() && !matched; ++j)
      if (!used[j] && compare(pe, gs[j], o, deadline, depth + 1).correct) used[j] = matched = true;
    if (!matched) return {false, "element " + pe + " not in the answer"};
  }
  return {true, "same elements"};
}

std::optional<std::vector<std::vector<std::string>>> matrix_rows(const std::string& s) {
  static const Regex re = Regex::bytes(R"(\A\\begin\{[pbvB]?matrix\}(.*)\\end\{[pbvB]?matrix\}\z)");
  const auto m = re.groups(s);
  if (m.empty()) return std::nullopt;
  std::vector<std::vector<std::string>> rows;
  std::string body(Regex::text(s, m[1]));
  size_t pos = 0;
  while (true) {
    size_t br = body.find("\\\\", pos);
    std::string row = body.substr(pos, br == std::string::npos ? std::string::npos : br - pos);
    if (row.find_first_not_of(' ') != std::string::npos) rows.push_back(split_top(row, '&'));
    if (br == std::string::npos) break;
    pos = br + 2;
  }
  return rows;
}

GradeResult compare(const std::string& p, const std::string& g, const MathGradeOptions& o, Clock::time_point deadline,
                    int depth) {
  if (Clock::now() > deadline) return {false, "timeout"};
  if (depth > 8) return {false, "answer nested too deeply"};
  if (p == g) return {true, "exact match"};
  if (lower(p) == lower(g) && p.find('\\') == std::string::npos) return {true, "exact match (case)"};
  // Matrices.
  auto pm = matrix_rows(p), gm = matrix_rows(g);
  if (pm || gm) {
    if (!pm || !gm || pm->size() != gm->size()) return {false, "different matrix shape"};
    for (size_t r = 0; r < pm->size(); ++r)
      if (!compare_lists((*pm)[r], (*gm)[r], true, o, deadline, depth).correct) return {false, "matrix row differs"};
    return {true, "matrices equal"};
  }
  // Unions of intervals: pieces in any order.
  if (g.find("\\cup") != std::string::npos || p.find("\\cup") != std::string::npos) {
    auto pieces = [](const std::string& s) {
      std::vector<std::string> out;
      size_t pos = 0;
      while (true) {
        size_t at = s.find("\\cup", pos);
        std::string piece = s.substr(pos, at == std::string::npos ? std::string::npos : at - pos);
        size_t a = piece.find_first_not_of(' '), b = piece.find_last_not_of(' ');
        out.push_back(a == std::string::npos ? "" : piece.substr(a, b - a + 1));
        if (at == std::string::npos) break;
        pos = at + 4;
      }
      return out;
    };
    return compare_lists(pieces(p), pieces(g), false, o, deadline, depth);
  }
  // Sets: \{a, b\} — unordered.
  auto set_body = [](const std::string& s) -> std::optional<std::string> {
    if (s.size() >= 4 && s.rfind("\\{", 0) == 0 && s.compare(s.size() - 2, 2, "\\}") == 0) return s.substr(2, s.size() - 4);
    return std::nullopt;
  };
  if (auto gs = set_body(g)) {
    auto ps = set_body(p);
    return compare_lists(split_top(ps ? *ps : p, ','), split_top(*gs, ','), false, o, deadline, depth);
  }
  // Tuples and intervals: brackets must agree (an open end is not a closed one), elements in order.
  const bool g_bracketed = (g.front() == '(' || g.front() == '[') && (g.back() == ')' || g.back() == ']') &&
                           split_top(g.substr(1, g.size() - 2), ',').size() >= 2 &&
                           (wrapped(g, '(', ')') || wrapped(g, '[', ']') || wrapped(g, '(', ']') || wrapped(g, '[', ')') ||
                            g.find(',') != std::string::npos);
  if (g_bracketed) {
    const bool p_bracketed = p.size() >= 2 && (p.front() == '(' || p.front() == '[') && (p.back() == ')' || p.back() == ']');
    if (!p_bracketed) {
      // "3, \frac{\pi}{2}" for "(3, \frac{\pi}{2})" is accepted; a lone value is not.
      auto pe = split_top(p, ',');
      if (pe.size() < 2) return {false, "expected a tuple or interval"};
      return compare_lists(pe, split_top(g.substr(1, g.size() - 2), ','), true, o, deadline, depth);
    }
    if (p.front() != g.front() || p.back() != g.back()) return {false, "different brackets (open/closed ends)"};
    return compare_lists(split_top(p.substr(1, p.size() - 1 - 1), ','), split_top(g.substr(1, g.size() - 2), ','), true, o,
                         deadline, depth);
  }
  // Plain lists ("1, 2, 3"; roots): unordered.
  auto gl = split_top(g, ','), pl = split_top(p, ',');
  if (gl.size() > 1 || pl.size() > 1) return compare_lists(pl, gl, false, o, deadline, depth);
  // Equations: "y = 2x + 3" (a named left side) against a gold expression takes the right side; two equations compare
  // their (left − right) up to sign.
  const bool pe = p.find('=') != std::string::npos, ge = g.find('=') != std::string::npos;
  static const Regex named_lhs = Regex::bytes(R"(\A\s*([a-zA-Z](_\{?\w+\}?)?|[a-zA-Z]\([a-z]\))\s*=)");
  if (pe && !ge) {
    if (!named_lhs.matches(p)) return {false, "an equation for an expression"};
    return compare(p.substr(p.find('=') + 1), g, o, deadline, depth + 1);
  }
  if (pe && ge) {
    std::string pd = "(" + p.substr(0, p.find('=')) + ")-(" + p.substr(p.find('=') + 1) + ")";
    std::string gd = "(" + g.substr(0, g.find('=')) + ")-(" + g.substr(g.find('=') + 1) + ")";
    if (auto r = compare_values(pd, gd, o); r && r->correct) return {true, "same equation"};
    if (auto r = compare_values(pd, "-(" + gd + ")", o); r && r->correct) return {true, "same equation"};
    return {false, "different equations"};
  }
  if (auto r = compare_values(p, g, o)) return *r;
  return {false, "different (not comparable as values)"};
}

}  // namespace

GradeResult grade_math_answer(const std::string& predicted, const std::string& gold, const MathGradeOptions& o) {
  static std::mutex ginac;  // GiNaC is not thread-safe: gradings run one at a time
  std::lock_guard<std::mutex> lock(ginac);
  const std::string p = normalize_answer(predicted, o.units), g = normalize_answer(gold, o.units);
  if (p.empty()) return {false, "no answer"};
  if (g.empty()) return {false, "empty gold answer"};
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.time_budget_s));
  GradeResult r = compare(p, g, o, deadline, 0);
  if (!r.correct && Clock::now() > deadline) r.reason = "timeout";
  return r;
}

}  // namespace pcm::eval
