// GSM8K train rows as chat for pcm-mini's phase 1: the user turn is pcm eval's math prompt, the assistant
// turn "<think>\n{worked solution}\n</think>\n\boxed{N}". GSM8K's calculator annotations (<<48/2=24>>) are
// dropped, since the result already follows them in the text, and "#### N" becomes \boxed{N}.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace pcm::synth::compose {

struct Gsm8kSolution {
  std::string worked;  // the reasoning lines without annotations or the "#### N" line
  std::string answer;  // N, thousands separators removed
};
// `where` names the row in errors ("file:line").
Gsm8kSolution convert_gsm8k_answer(const std::string& answer_field, const std::string& where);

struct Gsm8kChatStats {
  int64_t rows = 0, kept = 0, contaminated = 0, grader_rejected = 0;
  std::vector<std::string> contamination_examples;  // "file:line ~ benchmark file:line"
};

// Reads GSM8K JSONL (question, answer) and returns chat rows; rows matching a benchmark problem (word
// 5-gram containment >= 0.5, the synth filter's rule) or whose boxed answer does not grade equal to the
// gold are dropped and counted.
std::vector<nlohmann::json> gsm8k_chat_rows(const std::string& path, const std::vector<std::string>& benchmark_files,
                                            Gsm8kChatStats* stats);

}  // namespace pcm::synth::compose
