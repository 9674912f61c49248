// Bad inputs to pcm eval, grade and plot, as the CLI audit found them: every error names the file (and line and
// field where there is one), and a resumed run's report counts only problems of its benchmarks.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "io/jsonl.h"
#include "test_util.h"
#include "util/file.h"
#include "util/json.h"

namespace pcm {
namespace {

std::string eval_args(const std::string& bench, const std::string& out) {
  return "eval --model " + test::testdata("models/tiny-mistral-bf16") + " --bench " + bench +
         " --n 1 --max-new-tokens 4 --threads 1 --data-dir " + test::testdata("../data/benchmarks") + " --out " + out;
}

// Audit item 10: a code row with fields of the wrong type gave a bare nlohmann type error, one without "test" said
// "humaneval row needs prompt, test and entry_point"; neither named the file or line (and the first surfaced only
// after generating).
TEST(EvalInputs, CodeRowsWithBadFieldsNameFileLineAndField) {
  test::TempDir dir;
  std::ofstream(dir.file("types.jsonl")) << R"({"task_id":"t0","prompt":"def f():\n","test":"","entry_point":"f"})" "\n"
                                         << R"({"task_id":"t","prompt":5,"test":7,"entry_point":null})" "\n";
  auto r = test::run_pcm(eval_args(dir.file("types.jsonl") + " --format code", dir.file("a")));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("types.jsonl:2: prompt: expected a string, got 5"), std::string::npos) << r.all();
  std::ofstream(dir.file("missing.jsonl")) << R"({"task_id":"t","prompt":"def f():\n"})" "\n";
  r = test::run_pcm(eval_args(dir.file("missing.jsonl") + " --format code", dir.file("b")));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("missing.jsonl:1: test: missing (a HumanEval row needs prompt, test, entry_point)"),
            std::string::npos)
      << r.all();
  std::ofstream(dir.file("plus.jsonl")) << R"({"task_id":"t","prompt":"p","entry_point":"f","canonical_solution":1,"plus_input":[]})" "\n";
  r = test::run_pcm(eval_args(dir.file("plus.jsonl") + " --format code", dir.file("c")));
  EXPECT_NE(r.err.find("plus.jsonl:1: canonical_solution: expected a string, got 1"), std::string::npos) << r.all();
}

// Audit item 15: a samples.jsonl row whose id is not in the benchmark was counted as a problem of the run.
TEST(EvalInputs, ResumeLeavesRowsOfUnknownIdsOutOfTheReport) {
  test::TempDir dir;
  const std::string run = dir.file("run"), args = eval_args("aime24 --limit 2", run);
  ASSERT_EQ(test::run_pcm(args).exit_code, 0);
  std::string text = read_text_file(run + "/samples.jsonl");
  json first = json::parse(text.substr(0, text.find('\n')));
  const std::string old_id = first["id"];
  first["id"] = "999999";
  text.replace(0, text.find('\n'), first.dump());
  std::ofstream(run + "/samples.jsonl", std::ios::binary | std::ios::trunc) << text;
  auto r = test::run_pcm(args + " --resume");
  ASSERT_EQ(r.exit_code, 0) << r.all();
  EXPECT_NE(r.err.find("samples.jsonl:1: id 999999 is not in benchmark aime24; left out of the report"), std::string::npos)
      << r.all();
  const json report = read_json_file(run + "/report.json");
  EXPECT_EQ(report["aime24"]["problems"], 2) << report.dump();
  EXPECT_EQ(report["aime24"]["samples"], 2) << report.dump();
  EXPECT_EQ(read_jsonl(run + "/samples.jsonl").size(), 3u) << "the row stays on file; id " << old_id << " was redone";
}

// Audit item 9: "pass@k": {"x": 0.5} printed "error: stod", {"1": "x"} a bare nlohmann type error.
TEST(PlotInputs, ReportWithBadPassAtKNamesFileAndField) {
  test::TempDir dir;
  const std::string report = dir.file("report.json");
  const auto plot = [&](const std::string& pass_at_k) {
    std::ofstream(report, std::ios::trunc) << R"({"aime24":{"pass@k":)" << pass_at_k
                                           << R"(,"pass@1":{"mean":0,"stderr":0},"problems":1,"samples":1}})";
    return test::run_pcm("plot " + report + " --out " + dir.file("r.svg"));
  };
  auto r = plot(R"({"x": 0.5})");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find(report + ": aime24.pass@k: key \"x\" is not a sample count k >= 1"), std::string::npos) << r.all();
  r = plot(R"({"1": "x"})");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find(report + ": aime24.pass@k.1: expected a number, got \"x\""), std::string::npos) << r.all();
  r = plot(R"({"1": 0.5, "2": 0.75})");
  EXPECT_EQ(r.exit_code, 0) << r.all();
}

// Audit item 11: a directory where a file is read printed "basic_filebuf::underflow error reading the file: Is a
// directory" with no path.
TEST(PlotInputs, ADirectoryGivenAsTheFileIsNamed) {
  test::TempDir dir;
  std::filesystem::create_directory(dir.file("adir"));
  auto r = test::run_pcm("grade --bench aime24 --data-dir " + test::testdata("../data/benchmarks") + " --in " +
                         dir.file("adir") + " --out " + dir.file("g.jsonl"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find(dir.file("adir") + ": cannot read: Is a directory"), std::string::npos) << r.all();
  r = test::run_pcm("plot " + dir.file("adir") + " --out " + dir.file("p.svg"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find(dir.file("adir") + ": cannot read: Is a directory"), std::string::npos) << r.all();
}

}  // namespace
}  // namespace pcm
