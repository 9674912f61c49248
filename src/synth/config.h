// synth.toml: per-role endpoints (extractor, generator, judges, teacher, embedder), stage rules and
// prompt templates. Every value has the PromptCoT reference default; unknown keys are errors (a typo must
// not silently run a week-long job with a default).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "synth/llm_client.h"
#include "synth/near_duplicates.h"

namespace pcm::synth {

struct RoleConfig {
  std::string name;  // "extractor", "generator", "judge:<name>", "teacher", "embedder"
  EndpointConfig endpoint;
  std::string model = "default";
  SamplingOptions sampling;
  int concurrency = 8;
  int batch_size = 32;  // embedder: inputs per /v1/embeddings request
  // "chat" (/v1/chat/completions, the server applies its chat template) or "completions" (/v1/completions
  // with the prompt text as is: base models, or servers without a chat template).
  std::string api = "chat";
};

struct PromptTemplates {
  // Placeholders: {problem} {k} {concepts} {level} {rationale_and_problem}
  std::string concepts;           // asks for a Python list
  std::string concepts_fallback;  // asks for "Knowledge Point:" lines (used on re-asks)
  std::string generate;
  std::string judge;
  std::string solve;
};

struct SynthConfig {
  std::string source;  // the file it came from ("" = defaults)
  uint64_t seed = 1234;
  int max_consecutive_failures = 32;  // requests failing for good in a row abort the stage

  RoleConfig extractor, generator, teacher, embedder;
  std::vector<RoleConfig> judges;

  // concepts
  std::vector<std::string> seed_files;
  int64_t seed_limit = 0;  // 0 = every seed problem
  int num_concepts = 5;
  int min_concepts = 2;
  int concept_parse_retries = 2;

  // sample
  int64_t sample_count = 1000;
  int list_size = 5;
  double sample_temperature = 0.2;
  std::vector<std::string> levels = {"AMC12", "HMMT-Nov", "HMMT-Feb", "AIME", "USAJMO", "USAMO", "USOJMO", "USOMO"};

  // generate / judge
  int generate_parse_retries = 0;
  int judge_parse_retries = 1;

  // filter
  bool only_perfect = true;  // false: at least one Perfect and no Bad
  bool dedup = true;
  MinHashOptions dedup_options;  // ngram 3, 128 permutations, Jaccard 0.7
  bool decontaminate = true;
  std::vector<std::string> benchmark_files = {
      "data/benchmarks/aime24.jsonl",  "data/benchmarks/aime25.jsonl",       "data/benchmarks/amc23.jsonl",
      "data/benchmarks/math500.jsonl", "data/benchmarks/olympiadbench.jsonl", "data/benchmarks/minerva_math.jsonl",
      "data/benchmarks/gsm8k.jsonl"};
  int decontam_ngram = 5;
  double decontam_threshold = 0.5;

  // solve
  int solve_n = 4;
  int solve_format_retries = 2;  // re-asks for a sample whose <think>/\boxed format is broken
  bool solve_use_n = false;      // first attempts of all n samples as one request with "n" (shared prefill)
  bool self_consistency = false;
  double consensus_threshold = 0.5;

  // export
  std::string system_prompt;

  PromptTemplates prompts;
};

SynthConfig default_synth_config();
SynthConfig load_synth_config(const std::string& path);  // errors name the file and key

// "{name}" → value for each pair; unknown placeholders stay as written.
std::string fill_template(const std::string& tmpl, const std::vector<std::pair<std::string, std::string>>& values);

}  // namespace pcm::synth
