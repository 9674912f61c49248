// The evaluation job behind `pcm eval`: every sample of every problem of the chosen benchmarks is
// generated (all in flight up to the generator's concurrency), checked for the <think> format and
// re-sampled with a new seed when invalid, graded (math grader or code sandbox), and appended to
// samples.jsonl as it finishes — so a killed run resumes without redoing or losing a sample — then
// summarised into report.json and report.md.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "util/json.h"

namespace pcm::eval {

struct EvalOptions {
  std::vector<std::string> benches;  // shipped names or .jsonl paths (with `format`)
  std::string format;                // "math" / "code" for path benches
  std::string data_dir;
  std::string out_dir;
  int64_t n = 1;
  double temperature = 0.6, top_p = 0.95;
  int64_t max_new_tokens = 32768;
  uint64_t seed = 0;
  bool think = false;       // require <think>…</think>answer; re-sample invalid outputs
  int max_retries = 3;
  std::string prompt_template;  // text with {problem}; "" = the standard instruction
  int64_t limit = 0;        // first N problems of each benchmark (0 = all)
  bool resume = false;
  int concurrency = 8;
  bool progress = true;
};

struct GenerationOutput {
  std::string text;
  std::string finish_reason;
  int64_t tokens = 0;
};

// One completion for a user message with a given seed; thread-safe (called from `concurrency` threads).
using GenerateFn = std::function<GenerationOutput(const std::string& user_message, uint64_t seed)>;

// The standard instruction for a problem (or the --prompt-template applied to it).
std::string eval_prompt(const std::string& format, const std::string& problem, const std::string& tmpl);

// Whether `text` is "<think>…</think>answer" (the opening tag may be in the prompt), non-empty, no nesting.
bool think_format_valid(const std::string& text);

// Runs (or resumes) the job; returns report.json's content.
json run_eval(const EvalOptions& options, const GenerateFn& generate);

}  // namespace pcm::eval
