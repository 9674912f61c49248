// Benchmark files (data/benchmarks/*.jsonl, or a user's own JSONL): rows with a stable id, the problem
// text, the gold answer and how to grade it. Shipped sets: math500, aime24, aime25, amc23, gsm8k,
// olympiadbench, minerva (math), humaneval (code).
#pragma once
#include <string>
#include <vector>

#include "eval/math_grader.h"
#include "util/json.h"

namespace pcm::eval {

struct BenchmarkRow {
  std::string id;       // unique_id / id / task_id / idx, else the 0-based line index
  std::string problem;  // the question shown to the model
  std::string gold;     // the gold final answer (math)
  MathGradeOptions grade;
  std::string subject;  // MATH-500's subject, "" elsewhere
  int level = 0;        // MATH-500's level, 0 elsewhere
  json raw;
};

struct Benchmark {
  std::string name;
  std::string format;              // "math" or "code"
  bool numeric_fallbacks = false;  // GSM8K: "#### N" and the last number count as answers
  std::vector<BenchmarkRow> rows;
  const BenchmarkRow* find(const std::string& id) const;
};

// `name_or_path`: a shipped name (looked up in `data_dir`) or a .jsonl path; `format` ("math"/"code")
// is required for a path. Errors name the file, line and field.
Benchmark load_benchmark(const std::string& name_or_path, const std::string& data_dir, const std::string& format = "");

std::vector<std::string> shipped_benchmarks();

}  // namespace pcm::eval
