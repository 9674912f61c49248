// `pcm synth compose`: phase-2 problems made without a teacher model. Concept lists are drawn with the
// synth stage's ConceptSampler (co-occurrence + cosine similarity) over the concept bank; its inputs are
// built programmatically: co-occurrence lists from keyword-tagging seed problems, embeddings from each
// concept's tags. Each list becomes a chained multi-part problem whose answer is computed exactly, written
// rationale-first inside <think>…</think> and ending in \boxed{answer}; the boxed answer is checked with
// pcm eval's math grader before the row is kept. Deterministic for a given seed.
#pragma once
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "synth/compose/concept_bank.h"

namespace pcm::synth::compose {

struct ComposeOptions {
  uint64_t seed = 1;
  size_t count = 1000;                     // problems to keep
  int min_concepts = 2, max_concepts = 4;  // list size (the difficulty level) is uniform in this range
  double temperature = 1.0;                // of the concept sampler's softmax
  std::vector<std::string> seed_files;     // JSONL with question/problem: co-occurrence source
  size_t seed_limit = 200;                 // seed problems read for co-occurrence (0: all)
  std::vector<std::string> benchmark_files;  // decontamination (word 5-gram containment ≥ 0.5)
  std::set<std::string> exclude;           // problem texts that must not be produced (e.g. the training set)
};

struct ComposedProblem {
  std::string id;  // "p<seed>-<index>"
  std::vector<std::string> concepts;  // in part order
  std::string problem;                // the user-facing problem text
  std::string solution;               // "<think>\nRationale: …\nPlan: …\nStep 1: …\n</think>\n\boxed{…}"
  Value answer;
};

struct ComposeStats {
  int64_t lists_sampled = 0;
  int64_t distinct_lists = 0;
  int64_t no_feasible_chain = 0;   // no order / numbers made every part's input suitable
  int64_t grader_rejected = 0;     // the boxed answer did not grade equal to the computed one
  int64_t contaminated = 0;        // matched a benchmark problem
  int64_t excluded = 0;            // equal to an excluded (training) problem
  int64_t duplicate_problem = 0;   // the same text produced earlier in this run
  int64_t kept = 0;
  std::map<std::string, int64_t> concept_use;
  std::map<int, int64_t> level_histogram;
  std::vector<std::string> contamination_examples;  // "problem id ~ benchmark file:line"
};

// The sampler's inputs, built from the bank and the seed problems (exposed for tests and the data card).
struct SamplerInputs {
  std::vector<std::vector<std::string>> lists;
  std::map<std::string, std::vector<float>> embeddings;
};
SamplerInputs build_sampler_inputs(const std::vector<std::string>& seed_files, size_t seed_limit);

// The rationale-first assistant text of a chain of parts (the answer is the last part's value).
std::string render_solution(const std::vector<const Concept*>& concepts, const std::vector<Part>& parts,
                            const std::vector<std::string>& names);

std::vector<ComposedProblem> compose_problems(const ComposeOptions& options, ComposeStats* stats);

// The user turn pcm eval sends for a math problem (training prompts match it exactly).
std::string math_user_prompt(const std::string& problem);

}  // namespace pcm::synth::compose
