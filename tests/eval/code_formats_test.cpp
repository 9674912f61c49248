// HumanEval+ and LiveCodeBench rows (hand-written in their published formats) through the sandbox: right
// code passes, wrong code fails, extra inputs / private tests (base64 + zlib + pickle) count.
#include <gtest/gtest.h>

#include "eval/code_formats.h"
#include "eval/sandbox.h"

namespace pcm::eval {
namespace {

using nlohmann::json;

SandboxLimits quick() {
  SandboxLimits l;
  l.cpu_seconds = 5;
  l.wall_seconds = 10;
  return l;
}

TEST(HumanEvalPlus, PlusInputsAndToleranceDecide) {
  const json row = {{"task_id", "HumanEval/x"},
                    {"prompt", "def scale(xs, k):\n    \"\"\"Multiply every element by k.\"\"\"\n"},
                    {"canonical_solution", "    return [x * k for x in xs]\n"},
                    {"entry_point", "scale"},
                    {"test", "def check(f):\n    assert f([1, 2], 3) == [3, 6]\n"},
                    {"plus_input", json::parse("[[[0.1, 0.2], 3], [[], 5], [[-1], 0]]")},
                    {"atol", 1e-6}};
  EXPECT_TRUE(run_python(humaneval_plus_program(row, "    return [x * k for x in xs]\n", true), quick()).passed());
  // Passes the base test but not the extra inputs (empty list).
  auto r = run_python(humaneval_plus_program(row, "    return [xs[0] * k] + [x * k for x in xs[1:]]\n", true), quick());
  EXPECT_FALSE(r.passed());
  // Float results within atol count as equal.
  EXPECT_TRUE(run_python(humaneval_plus_program(row, "    return [x * k if isinstance(x, int) else x * k + 1e-9 for x in xs]\n", true),
                         quick())
                  .passed());
  EXPECT_FALSE(run_python(humaneval_plus_program(row, "    return [x * k if isinstance(x, int) else x * k + 1e-3 for x in xs]\n", true),
                          quick())
                   .passed());
  EXPECT_FALSE(run_python(humaneval_plus_program(row, "```python\ndef scale(xs, k):\n    return xs\n```", false), quick()).passed());
}

TEST(LiveCodeBench, StdinPublicAndCompressedPrivateTests) {
  const json row = {
      {"question_content", "Read two integers and print their sum."},
      {"public_test_cases", json::array({{{"input", "3 4\n"}, {"output", "7\n"}, {"testtype", "stdin"}}}).dump()},
      // [{"input": "10 20\n", "output": "30\n", "testtype": "stdin"}] as base64(zlib(pickle(json))).
      {"private_test_cases", "eJxrYJnqyAABPbbR1UqZeQWlJUpWCkqGBgpGBjF5SjoKSvmlJVBBY6hISWpxSUllQSpIrLgkJTNPqTZ2ih4A4iQVMw=="},
      {"metadata", "{}"}};
  EXPECT_TRUE(run_python(livecodebench_program(row, "```python\na, b = map(int, input().split())\nprint(a + b)\n```"), quick()).passed());
  // Right on the public test (3 4 -> 7) only.
  auto r = run_python(livecodebench_program(row, "```python\ninput()\nprint(7)\n```"), quick());
  EXPECT_FALSE(r.passed());
  EXPECT_NE(r.err.find("test 1"), std::string::npos) << r.err;
}

TEST(LiveCodeBench, FunctionalLeetCodeStyle) {
  const json row = {{"public_test_cases",
                     json::array({{{"input", "[2,7,11,15]\n9"}, {"output", "[0,1]"}, {"testtype", "functional"}},
                                  {{"input", "[3,3]\n6"}, {"output", "[0,1]"}, {"testtype", "functional"}}})
                         .dump()},
                    {"private_test_cases", ""},
                    {"metadata", json{{"func_name", "twoSum"}}.dump()}};
  const std::string good =
      "```python\nclass Solution:\n    def twoSum(self, nums: List[int], target: int) -> List[int]:\n"
      "        seen = {}\n        for i, x in enumerate(nums):\n            if target - x in seen:\n"
      "                return [seen[target - x], i]\n            seen[x] = i\n```";
  EXPECT_TRUE(run_python(livecodebench_program(row, good), quick()).passed());
  EXPECT_FALSE(run_python(livecodebench_program(row, "```python\nclass Solution:\n    def twoSum(self, nums, target):\n        return [0, 0]\n```"),
                          quick())
                   .passed());
}

}  // namespace
}  // namespace pcm::eval
