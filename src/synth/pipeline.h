// The PromptCoT pipeline as resumable stages over one output directory (file names in run_context.h):
// concepts → embed → sample → generate → judge → filter (verdicts, dedup, decontamination) → solve → export.
// Each stage reads the previous stage's file and appends its own; rerunning a stage skips finished ids.
#pragma once
#include <string>
#include <vector>

#include "synth/answer_match.h"
#include "synth/run_context.h"

namespace pcm::synth {

void stage_concepts(RunContext& ctx);
void stage_embed(RunContext& ctx);
void stage_sample(RunContext& ctx);
void stage_generate(RunContext& ctx);
void stage_judge(RunContext& ctx);
void stage_filter(RunContext& ctx);
void stage_solve(RunContext& ctx, const AnswerMatcher& matcher);
void stage_export(RunContext& ctx);

const std::vector<std::string>& stage_names();  // in pipeline order
// Runs the named stage (one of stage_names()).
void run_stage(RunContext& ctx, const std::string& name, const AnswerMatcher& matcher);
// Runs stages from `from` to `to` inclusive (names; empty = first / last).
void run_pipeline(RunContext& ctx, const AnswerMatcher& matcher, const std::string& from = "",
                  const std::string& to = "");

// Seed problems: every row's "problem" (or "question") from JSONL files (a directory = its *.jsonl files),
// deduplicated by text, the first `limit` (0 = all).
struct SeedProblem {
  std::string id, source, text;
};
std::vector<SeedProblem> read_seed_problems(const std::vector<std::string>& files, int64_t limit);

// "1. first\n2. second" as the prompts list concepts.
std::string numbered_list(const std::vector<std::string>& items);

}  // namespace pcm::synth
