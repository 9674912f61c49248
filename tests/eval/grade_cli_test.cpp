// pcm grade end to end: shipped benchmarks by name, ids as benchmark ids or line indexes, the graded
// rows' fields, and clear errors for unknown ids and malformed rows.
#include <gtest/gtest.h>

#include <fstream>

#include "io/jsonl.h"
#include "test_util.h"

namespace pcm {
namespace {

using nlohmann::json;

TEST(GradeCli, GradesMath500AndGsm8kCompletions) {
  test::TempDir dir;
  auto math = read_jsonl(test::testdata("../data/benchmarks/math500.jsonl"));
  {
    std::ofstream f(dir.file("preds.jsonl"));
    for (int i = 0; i < 10; ++i)
      f << json{{"id", math[i]["unique_id"]}, {"completion", i < 6 ? math[i]["solution"].get<std::string>() : "\\boxed{-12345}"}}.dump()
        << "\n";
    f << json{{"id", 10}, {"completion", "<think>hmm</think> nothing boxed"}}.dump() << "\n";
  }
  auto r = test::run_pcm("grade --bench math500 --data-dir " + test::testdata("../data/benchmarks") + " --in " +
                         dir.file("preds.jsonl") + " --out " + dir.file("graded.jsonl"));
  ASSERT_EQ(r.exit_code, 0) << r.all();
  EXPECT_NE(r.out.find("6 / 11 correct"), std::string::npos) << r.out;
  auto graded = read_jsonl(dir.file("graded.jsonl"));
  ASSERT_EQ(graded.size(), 11u);
  EXPECT_TRUE(graded[0]["correct"].get<bool>());
  EXPECT_EQ(graded[0]["extraction"], "boxed");
  EXPECT_FALSE(graded[7]["correct"].get<bool>());
  EXPECT_EQ(graded[10]["extraction"], "none");
  EXPECT_EQ(graded[10]["reason"], "no answer found");
}

TEST(GradeCli, UnknownIdAndBadRowsAreErrors) {
  test::TempDir dir;
  std::ofstream(dir.file("a.jsonl")) << "{\"id\": \"test/none.json\", \"completion\": \"1\"}\n";
  auto r = test::run_pcm("grade --bench math500 --data-dir " + test::testdata("../data/benchmarks") + " --in " +
                         dir.file("a.jsonl") + " --out " + dir.file("o.jsonl"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("a.jsonl:1: id test/none.json is not in benchmark math500"), std::string::npos) << r.all();
  std::ofstream(dir.file("b.jsonl")) << "{\"id\": 0}\n";
  r = test::run_pcm("grade --bench gsm8k --data-dir " + test::testdata("../data/benchmarks") + " --in " + dir.file("b.jsonl") +
                    " --out " + dir.file("o.jsonl"));
  EXPECT_NE(r.err.find("b.jsonl:1: each row needs a string 'completion'"), std::string::npos) << r.all();
}

}  // namespace
}  // namespace pcm
