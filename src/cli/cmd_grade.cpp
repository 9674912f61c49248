// pcm grade: grade completions produced anywhere against a benchmark's gold answers.
#include <cstdio>
#include <map>
#include <memory>

#include "cli/command.h"
#include "eval/answer_extract.h"
#include "eval/benchmark.h"
#include "eval/report.h"
#include "io/jsonl.h"
#include "util/error.h"
#include "util/file.h"

namespace pcm::cli {
namespace {

struct Options {
  std::string bench, format, in, out, data_dir, report;
};

std::string default_data_dir() {
#ifdef PCM_SOURCE_DIR
  return std::string(PCM_SOURCE_DIR) + "/data/benchmarks";
#else
  return "data/benchmarks";
#endif
}

void run(const Options& o) {
  const eval::Benchmark b = eval::load_benchmark(o.bench, o.data_dir.empty() ? default_data_dir() : o.data_dir, o.format);
  PCM_CHECK(b.format == "math", "pcm grade: '{}' is a code benchmark; grading code needs the sandbox (pcm eval)", b.name);
  auto rows = read_jsonl(o.in, /*strict_tail=*/true);
  std::vector<json> graded;
  std::map<std::string, eval::ProblemSamples> samples;  // by benchmark id, in first-seen order below
  std::vector<std::string> order;
  int64_t correct = 0, none = 0, line = 0;
  for (const auto& r : rows) {
    ++line;
    PCM_CHECK(r.is_object() && r.contains("completion") && r.at("completion").is_string(),
              "{}:{}: each row needs a string 'completion'", o.in, line);
    PCM_CHECK(r.contains("id"), "{}:{}: each row needs an 'id' (the benchmark row's id or its 0-based index)", o.in, line);
    const std::string id = r.at("id").is_string() ? r.at("id").get<std::string>() : r.at("id").dump();
    const eval::BenchmarkRow* row = b.find(id);
    if (!row && r.at("id").is_number_integer()) {  // a 0-based line index
      int64_t k = r.at("id").get<int64_t>();
      if (k >= 0 && k < static_cast<int64_t>(b.rows.size())) row = &b.rows[static_cast<size_t>(k)];
    }
    PCM_CHECK(row, "{}:{}: id {} is not in benchmark {}", o.in, line, id, b.name);
    eval::Extraction e = eval::extract_answer(r.at("completion").get<std::string>(), b.numeric_fallbacks);
    eval::GradeResult g = e.found() ? eval::grade_math_answer(e.answer, row->gold, row->grade)
                                    : eval::GradeResult{false, "no answer found"};
    json out = r;
    out["extracted"] = e.answer;
    out["extraction"] = e.method;
    out["gold"] = row->gold;
    out["correct"] = g.correct;
    out["reason"] = g.reason;
    graded.push_back(std::move(out));
    auto [it, fresh] = samples.try_emplace(row->id);
    if (fresh) {
      order.push_back(row->id);
      it->second.id = row->id;
      if (!row->subject.empty()) it->second.groups.push_back(row->subject);
      if (row->level > 0) it->second.groups.push_back("level " + std::to_string(row->level));
    }
    it->second.correct.push_back(g.correct);
    it->second.format_valid += e.found();
    if (r.contains("generated_tokens") && r.at("generated_tokens").is_number_integer())
      it->second.lengths.push_back(r.at("generated_tokens").get<int64_t>());
    correct += g.correct;
    none += !e.found();
  }
  std::string text;
  for (const auto& g : graded) text += g.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  write_file_atomic(o.out, text);
  if (!o.report.empty() && !graded.empty()) {
    std::vector<eval::ProblemSamples> per_problem;
    for (const auto& id : order) per_problem.push_back(samples[id]);
    json summary = eval::summarize(per_problem);
    summary["benchmark"] = b.name;
    write_file_atomic(o.report, summary.dump(2));
    std::printf("| benchmark | problems | samples | pass@1 (%%) ± s.e. | pass@k (%%) |\n| --- | --- | --- | --- | --- |\n%s",
                eval::markdown_summary(b.name, summary).c_str());
  }
  std::printf("%s: %lld / %zu correct (%.1f%%), %lld without an answer -> %s\n", b.name.c_str(),
              static_cast<long long>(correct), graded.size(), graded.empty() ? 0.0 : 100.0 * correct / graded.size(),
              static_cast<long long>(none), o.out.c_str());
}

PCM_REGISTER_COMMAND({"grade", "Grade completions from anywhere against a math benchmark's answers", [](CLI::App* sub) {
                        auto o = std::make_shared<Options>();
                        sub->add_option("--bench", o->bench, "math500, aime24, aime25, amc23, gsm8k, olympiadbench, minerva, or a .jsonl")
                            ->required();
                        sub->add_option("--format", o->format, "math (for a .jsonl given as --bench)");
                        sub->add_option("--in", o->in, "predictions JSONL: {\"id\": ..., \"completion\": \"...\"}")->required();
                        sub->add_option("--out", o->out, "graded JSONL (adds extracted, correct, reason)")->required();
                        sub->add_option("--report", o->report,
                                        "also write report.json: pass@1 ± s.e. over samples per id, pass@k, per subject");
                        sub->add_option("--data-dir", o->data_dir, "where the shipped benchmarks are (default: the repo's data/benchmarks)");
                        sub->callback([o] { run(*o); });
                      }});

}  // namespace
}  // namespace pcm::cli
