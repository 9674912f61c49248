// pcm eval end to end against a real `pcm serve` with a fixture model (random weights: accuracy ~0 is
// expected). What is tested: the report, format retries, resume after a kill (a torn last line, half the
// samples) without redoing or duplicating samples, and refusing to overwrite a run without --resume.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <set>
#include <thread>

#include "io/jsonl.h"
#include "serve_process.h"
#include "test_util.h"
#include "util/file.h"
#include "util/json.h"

namespace pcm {
namespace {


TEST(EvalCli, RunsReportsRetriesAndResumesAfterAKill) {
  test::TempDir dir;
  test::ServeProcess serve(dir.file("serve.log"));
  ASSERT_GT(serve.port(), 0) << read_text_file(dir.file("serve.log"));
  const std::string run = dir.file("run");
  const std::string args = "eval --endpoint http://127.0.0.1:" + std::to_string(serve.port()) +
                           "/v1 --served-model tiny-mistral-bf16 --completions --bench gsm8k,math500 --limit 3 --n 2 "
                           "--max-new-tokens 8 --think --max-retries 1 --concurrency 2 --data-dir " +
                           test::testdata("../data/benchmarks") + " --out " + run;
  auto r = test::run_pcm(args);
  ASSERT_EQ(r.exit_code, 0) << r.all();
  auto rows = read_jsonl(run + "/samples.jsonl");
  ASSERT_EQ(rows.size(), 12u);
  auto report = parse_json(read_text_file(run + "/report.json"), "report.json");
  EXPECT_EQ(report["gsm8k"]["samples"], 6);
  EXPECT_EQ(report["gsm8k"]["retries"], 6) << "random weights never write </think>: one retry each";
  EXPECT_EQ(report["gsm8k"]["invalid_format"], 6);
  EXPECT_NE(r.out.find("| math500 | 3 | 6 |"), std::string::npos) << r.out;

  // A second run into the same directory without --resume is refused (work is never overwritten).
  auto again = test::run_pcm(args);
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("--resume"), std::string::npos) << again.all();

  // Simulate a kill: keep 5 finished samples and half of a sixth line.
  std::string text = read_text_file(run + "/samples.jsonl");
  size_t cut = 0;
  for (int i = 0; i < 5; ++i) cut = text.find('\n', cut) + 1;
  std::ofstream(run + "/samples.jsonl", std::ios::binary | std::ios::trunc) << text.substr(0, cut + 40);
  auto resumed = test::run_pcm(args + " --resume");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.all();
  rows = read_jsonl(run + "/samples.jsonl", /*strict_tail=*/true);
  ASSERT_EQ(rows.size(), 12u);
  std::set<std::string> keys;
  for (const auto& row : rows) keys.insert(row["benchmark"].get<std::string>() + "/" + row["id"].get<std::string>() + "/" +
                                           std::to_string(row["sample"].get<int>()));
  EXPECT_EQ(keys.size(), 12u) << "no sample done twice";

  // A samples file edited by hand (row 2 without its "id"): resuming names the file and line.
  text = read_text_file(run + "/samples.jsonl");
  const size_t row2 = text.find('\n') + 1, id = text.find("\"id\":", row2);
  ASSERT_LT(id, text.find('\n', row2));
  text.replace(id, 5, "\"id_\":");
  std::ofstream(run + "/samples.jsonl", std::ios::binary | std::ios::trunc) << text;
  auto broken = test::run_pcm(args + " --resume");
  EXPECT_NE(broken.exit_code, 0);
  EXPECT_NE(broken.err.find("samples.jsonl:2: unexpected value"), std::string::npos) << broken.all();
}

}  // namespace
}  // namespace pcm

namespace pcm {
namespace {

TEST(EvalCli, InProcessModelBatchesSamplesThroughTheScheduler) {
  test::TempDir dir;
  auto r = test::run_pcm("eval --model " + test::testdata("models/tiny-mistral-bf16") +
                         " --bench gsm8k,humaneval --limit 2 --n 2 --max-new-tokens 8 --max-slots 4 --threads 1 --data-dir " +
                         test::testdata("../data/benchmarks") + " --out " + dir.file("run"));
  ASSERT_EQ(r.exit_code, 0) << r.all();
  auto rows = read_jsonl(dir.file("run/samples.jsonl"));
  ASSERT_EQ(rows.size(), 8u);
  for (const auto& row : rows) {
    EXPECT_EQ(row["generated_tokens"].get<int64_t>() > 0, true);
    EXPECT_TRUE(row.contains("correct"));
  }
  EXPECT_NE(r.out.find("| humaneval | 2 | 4 |"), std::string::npos) << r.out;

  // pcm plot draws the run: pass@k per benchmark and accuracy against a token budget.
  auto p = test::run_pcm("plot " + dir.file("run/report.json") + " --out " + dir.file("eval.svg"));
  ASSERT_EQ(p.exit_code, 0) << p.all();
  const std::string svg = read_text_file(dir.file("eval.svg"));
  EXPECT_NE(svg.find("pass@k per benchmark"), std::string::npos);
  EXPECT_NE(svg.find("generation-length budget"), std::string::npos);
  EXPECT_NE(svg.find("humaneval"), std::string::npos);
}

// Sizes and times on the command line are refused by name before any model loads or request goes out.
TEST(EvalCli, RefusesNonPositiveCountsAndTimeouts) {
  test::TempDir dir;
  const std::string base = "eval --bench gsm8k --limit 1 --endpoint http://127.0.0.1:9/v1 --served-model m --out " + dir.file("run");
  for (const std::string opt : {"--timeout 0", "--timeout -5", "--n 0", "--concurrency 0", "--max-retries -1"}) {
    auto r = test::run_pcm(base + " " + opt);
    EXPECT_NE(r.exit_code, 0) << opt;
    EXPECT_NE(r.err.find(opt.substr(0, opt.find(' '))), std::string::npos) << opt << ": " << r.all();
  }
  // a thread per request in flight (and per in-process slot): past 1024 refused before anything runs
  for (const std::string opt : {"--concurrency 100000", "--max-slots 5000"}) {
    auto r = test::run_pcm(base + " " + opt);
    EXPECT_NE(r.exit_code, 0) << opt;
    EXPECT_NE(r.err.find(opt.substr(0, opt.find(' ')) + ": must be between 1 and 1024"), std::string::npos)
        << opt << ": " << r.all();
  }
}

}  // namespace
}  // namespace pcm
