#include "synth/answer_match.h"

#include "eval/math_grader.h"

#include <cctype>

namespace pcm::synth {

namespace {
void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
}
}  // namespace

std::string ExactAnswerMatcher::normalise(const std::string& answer) {
  std::string s;
  for (char c : answer)
    if (!std::isspace(static_cast<unsigned char>(c))) s.push_back(c);
  while (s.size() >= 2 && s.front() == '$' && s.back() == '$') s = s.substr(1, s.size() - 2);
  while (!s.empty() && s.back() == '.') s.pop_back();
  replace_all(s, "\\left", "");
  replace_all(s, "\\right", "");
  replace_all(s, "\\dfrac", "\\frac");
  replace_all(s, "\\tfrac", "\\frac");
  replace_all(s, "\\!", "");
  replace_all(s, "\\,", "");
  return s;
}

bool MathAnswerMatcher::same(const std::string& a, const std::string& b) const { return eval::grade_math_answer(a, b).correct; }

std::unique_ptr<AnswerMatcher> default_answer_matcher() { return std::make_unique<MathAnswerMatcher>(); }

}  // namespace pcm::synth
