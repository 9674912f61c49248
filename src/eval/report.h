// Accuracy from sampled completions: the unbiased pass@k estimator (Chen et al. 2021), mean pass@1 over
// the n samples with its standard error across problems, per-group breakdowns, length statistics.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "util/json.h"

namespace pcm::eval {

// 1 - C(n - c, k) / C(n, k): the chance that at least one of k samples drawn from n (c correct) is correct.
double pass_at_k(int64_t n, int64_t c, int64_t k);

struct ProblemSamples {
  std::string id;
  std::vector<std::string> groups;  // breakdowns it counts in, e.g. MATH-500 {"Algebra", "level 3"}
  std::vector<bool> correct;
  std::vector<int64_t> lengths;  // generated tokens per sample (may be empty)
  int64_t format_valid = 0;      // samples whose format was valid (for --think)
};

// report.json content: {"problems", "samples", "pass@1": {"mean", "stderr"}, "pass@k": {k: v}, "groups": {...},
// "length": {"mean", "p50", "p95"}, "format_valid_rate"}. k = 1, 2, 4, ... up to the smallest n.
json summarize(const std::vector<ProblemSamples>& problems);

// A Markdown table row set for one benchmark's summary.
std::string markdown_summary(const std::string& name, const json& summary);

}  // namespace pcm::eval
