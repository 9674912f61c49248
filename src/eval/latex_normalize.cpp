#include "eval/latex_normalize.h"

#include <algorithm>
#include <cctype>

#include "tokenizer/regex.h"

namespace pcm::eval {

namespace {

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
}

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\n\r"), b = s.find_last_not_of(" \t\n\r");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

}  // namespace

std::string strip_text_macros(std::string_view in) {
  std::string s(in);
  for (std::string_view macro : {"\\textbf{", "\\textit{", "\\text{", "\\mathrm{", "\\mathbf{", "\\mbox{", "\\textrm{",
                                 "\\operatorname{"}) {
    size_t pos;
    while ((pos = s.find(macro)) != std::string::npos) {
      size_t open = pos + macro.size() - 1, depth = 0, close = std::string::npos;
      for (size_t j = open; j < s.size(); ++j) {
        if (s[j] == '{') ++depth;
        if (s[j] == '}' && --depth == 0) {
          close = j;
          break;
        }
      }
      if (close == std::string::npos) break;
      s = s.substr(0, pos) + s.substr(open + 1, close - open - 1) + s.substr(close + 1);
    }
  }
  return s;
}

std::string normalize_answer(std::string_view answer, const std::vector<std::string>& units) {
  std::string s = trim(std::string(answer));
  // Math delimiters.
  for (std::string_view d : {"\\[", "\\]", "\\(", "\\)"})
    if (s.size() >= 2 && s.find(d) == 0) s = s.substr(2);
  replace_all(s, "\\$", "");  // currency before math delimiters
  replace_all(s, "$", "");
  s = strip_text_macros(s);
  // Spacing and sizing macros.
  for (std::string_view m : {"\\left", "\\right", "\\!", "\\,", "\\;", "\\:", "\\quad", "\\qquad", "\\displaystyle",
                             "\\bigl", "\\bigr", "\\Bigl", "\\Bigr", "\\big", "\\Big", "~"})
    replace_all(s, m, m == "~" ? " " : "");
  replace_all(s, "\\dfrac", "\\frac");
  replace_all(s, "\\tfrac", "\\frac");
  replace_all(s, "\\le ", "\\leq ");
  replace_all(s, "\\ge ", "\\geq ");
  // Degrees, percent, currency.
  for (std::string_view m : {"^{\\circ}", "^\\circ", "\\circ", "°", "\\%", "%", "\\$"}) replace_all(s, m, "");
  // Units named by the benchmark (longest first so "cm" is not cut from "cm^2").
  std::vector<std::string> u = units;
  std::sort(u.begin(), u.end(), [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const auto& unit : u) {
    std::string plain = strip_text_macros(unit);
    if (!plain.empty()) replace_all(s, plain, "");
  }
  s = trim(s);
  // Trailing punctuation.
  while (!s.empty() && (s.back() == '.' || s.back() == ',' || s.back() == ';' || s.back() == '\\')) s.pop_back();
  s = trim(s);
  // "x = 5", "k=3" (a single variable, not an equation between expressions).
  static const Regex var_prefix = Regex::bytes(R"(\A\s*[a-zA-Z](_\{?\w+\}?)?\s*=\s*([^=]+)\z)");
  if (const auto m = var_prefix.groups(s); !m.empty()) s = trim(std::string(Regex::text(s, m[2])));
  // Thousands separators in a whole number: 1,000,000 -> 1000000 (only when every group has 3 digits).
  static const Regex thousands = Regex::bytes(R"(\A-?\d{1,3}(,\d{3})+(\.\d+)?\z)");
  if (thousands.matches(s)) replace_all(s, ",", "");
  // ".5" -> "0.5"
  if (s.size() > 1 && s[0] == '.' && std::isdigit(static_cast<unsigned char>(s[1]))) s = "0" + s;
  // Collapse whitespace.
  std::string out;
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (!out.empty() && out.back() != ' ') out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return trim(out);
}

}  // namespace pcm::eval
