// Parsers for what models answer at each synth stage. Each returns either the parsed value or a short
// machine-readable reason ("no_list_found", "unclosed_problem", ...) that the stage counts when it drops
// an item. They never throw on model output.
#pragma once
#include <array>
#include <optional>
#include <string>
#include <vector>

namespace pcm::synth {

template <class T>
struct Parsed {
  std::optional<T> value;
  std::string reason;  // set when !value
  bool ok() const { return value.has_value(); }
};

// Concepts, in the two forms the PromptCoT prompts ask for: a Python-style list of strings (the last one
// in the answer, usually inside a ```python block; single or double quotes, escapes, trailing comma), or
// lines "Knowledge Point: ...". Items are whitespace-collapsed; empty and repeated items are removed.
Parsed<std::vector<std::string>> parse_concept_list(const std::string& text);
Parsed<std::vector<std::string>> parse_python_string_list(const std::string& text);
Parsed<std::vector<std::string>> parse_knowledge_points(const std::string& text);

// "<!-- BEGIN RATIONALE -->...<!-- END RATIONALE -->" then "<!-- BEGIN PROBLEM -->...<!-- END PROBLEM -->".
// Tags are matched case-insensitively with flexible inner spacing. Exactly one of each is required.
struct RationaleProblem {
  std::string rationale;
  std::string problem;
};
Parsed<RationaleProblem> parse_rationale_problem(const std::string& text);

// Judge verdicts. Criteria are rated Perfect/Acceptable/Bad (any case, with markdown around them);
// "Final Judgement:" (or "Judgment") must be present; its last occurrence decides.
enum class Rating { Perfect, Acceptable, Bad };
const char* rating_name(Rating r);  // "perfect", "acceptable", "bad"
constexpr std::array<const char*, 5> kJudgeCriteria = {"format", "factual accuracy", "difficulty alignment",
                                                       "concept coverage", "solvability"};
struct Judgement {
  std::array<std::optional<Rating>, 5> criteria;  // in kJudgeCriteria order; unset when not found
  Rating final_verdict = Rating::Bad;
};
Parsed<Judgement> parse_judgement(const std::string& text);

// A teacher solution "<think>reasoning</think>answer" whose answer holds \boxed{...}. A missing opening
// tag is accepted when the chat template put "<think>" in the prompt (exactly one "</think>" present).
struct Solution {
  std::string reasoning;  // inside <think>...</think>
  std::string answer;     // the text after </think>
  std::string boxed;      // content of the last \boxed{...} in the answer
};
Parsed<Solution> parse_solution(const std::string& text);

// Content of the last \boxed{...} (or \fbox{...}) with nested braces; nullopt when none or unclosed.
std::optional<std::string> last_boxed(const std::string& text);

// Whitespace-collapsed, trimmed copy.
std::string collapse_whitespace(const std::string& s);

}  // namespace pcm::synth
