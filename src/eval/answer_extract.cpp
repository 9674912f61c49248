#include "eval/answer_extract.h"

#include <algorithm>
#include <cctype>

#include "tokenizer/regex.h"

namespace pcm::eval {

std::optional<std::string> last_boxed(std::string_view text) {
  size_t best = std::string_view::npos, skip = 0;
  for (std::string_view tag : {std::string_view("\\boxed"), std::string_view("\\fbox")}) {
    size_t at = text.rfind(tag);
    if (at != std::string_view::npos && (best == std::string_view::npos || at > best)) best = at, skip = tag.size();
  }
  if (best == std::string_view::npos) return std::nullopt;
  size_t i = best + skip;
  while (i < text.size() && text[i] == ' ') ++i;
  if (i < text.size() && text[i] == '{') {
    int depth = 0;
    for (size_t j = i; j < text.size(); ++j) {
      if (text[j] == '\\' && j + 1 < text.size()) {  // escaped brace: \{ \}
        ++j;
        continue;
      }
      if (text[j] == '{') ++depth;
      if (text[j] == '}' && --depth == 0) return std::string(text.substr(i + 1, j - i - 1));
    }
    return std::nullopt;  // unclosed
  }
  if (i > best + skip) {  // "\boxed 5": up to the next space or $
    size_t j = i;
    while (j < text.size() && text[j] != '$' && !std::isspace(static_cast<unsigned char>(text[j]))) ++j;
    if (j > i) return std::string(text.substr(i, j - i));
  }
  return std::nullopt;
}

namespace {

// Group `group` of the last of the non-overlapping matches of `re` in `s` (as std::sregex_iterator walks them);
// "" when there is none. The patterns here never match empty.
std::string last_match(const Regex& re, const std::string& s, size_t group) {
  std::pair<size_t, size_t> last{std::string::npos, std::string::npos};  // copied out once, at the end
  for (size_t pos = 0;;) {
    const auto g = re.groups(s, pos);
    if (g.empty()) return std::string(Regex::text(s, last));
    last = g[group];
    pos = std::max(g[0].second, g[0].first + 1);
  }
}

std::string trim(std::string s) {
  size_t a = s.find_first_not_of(" \t\n\r$"), b = s.find_last_not_of(" \t\n\r$.");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

}  // namespace

Extraction extract_answer(std::string_view completion, bool numeric_fallbacks) {
  std::string_view text = completion;
  size_t think_end = text.rfind("</think>");
  if (think_end != std::string_view::npos) text = text.substr(think_end + 8);
  if (auto b = last_boxed(text)) return {trim(*b), "boxed"};
  const std::string s(text);
  static const Regex final_answer = Regex::bytes(R"([Tt]he final answer is[:\s]*(.+))");
  const std::string last_final = last_match(final_answer, s, 1);
  if (!last_final.empty()) {
    std::string a = last_final.substr(0, last_final.find('\n'));
    if (!a.empty() && a[0] == '$') {  // "$12$. I hope": the math span
      size_t close = a.find('$', 1);
      a = a.substr(1, close == std::string::npos ? std::string::npos : close - 1);
    } else if (size_t stop = a.find(". "); stop != std::string::npos) {
      a.resize(stop);  // the end of the sentence
    }
    a = trim(a);
    if (!a.empty()) return {a, "final_answer"};
  }
  if (numeric_fallbacks) {
    static const Regex hash = Regex::bytes(R"(####\s*(-?[\d,]*\.?\d+))");
    if (std::string last_hash = last_match(hash, s, 1); !last_hash.empty()) return {last_hash, "hash"};
    static const Regex number = Regex::bytes(R"(-?\d[\d,]*(\.\d+)?|-?\.\d+)");
    if (std::string last_number = last_match(number, s, 0); !last_number.empty()) return {last_number, "last_number"};
  }
  return {"", "none"};
}

}  // namespace pcm::eval
