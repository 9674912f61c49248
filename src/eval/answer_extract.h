// Final-answer extraction from a model's completion: the last \boxed{…} / \fbox{…} (nested braces)
// after </think> when present; otherwise "the final answer is …"; for GSM8K-style sets, "#### N" and
// then the last number. No answer found is a verdict of its own.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace pcm::eval {

struct Extraction {
  std::string answer;  // as written (LaTeX), not normalised
  std::string method;  // "boxed", "final_answer", "hash", "last_number", or "none"
  bool found() const { return method != "none"; }
};

// The content of the last \boxed{…} or \fbox{…} (also "\boxed 5"), or nothing.
std::optional<std::string> last_boxed(std::string_view text);

// `numeric_fallbacks`: also accept GSM8K's "#### N" and, failing that, the last number in the text.
Extraction extract_answer(std::string_view completion, bool numeric_fallbacks);

}  // namespace pcm::eval
