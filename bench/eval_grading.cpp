// Harness overhead, no model: math samples graded per second (extraction + equivalence over MATH-500's
// gold solutions and deliberately wrong answers) and code samples per second (HumanEval canonical
// solutions in the sandbox, in parallel).
//   ./build/bench/eval_grading [data_dir=data/benchmarks] [sandbox_workers=2]
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "eval/answer_extract.h"
#include "eval/code_tasks.h"
#include "eval/math_grader.h"
#include "eval/sandbox.h"
#include "io/jsonl.h"

using namespace pcm;

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "data/benchmarks";
  const int workers = argc > 2 ? std::atoi(argv[2]) : 2;
  auto math = read_jsonl(dir + "/math500.jsonl");
  auto t0 = std::chrono::steady_clock::now();
  int64_t graded = 0, correct = 0;
  for (int rep = 0; rep < 5; ++rep)
    for (size_t i = 0; i < math.size(); ++i) {
      const auto& r = math[i];
      // Half the samples carry the right solution, half another problem's answer.
      const std::string completion = i % 2 ? r["solution"].get<std::string>()
                                           : "\\boxed{" + math[(i + 7) % math.size()]["answer"].get<std::string>() + "}";
      eval::Extraction e = eval::extract_answer(completion, false);
      correct += eval::grade_math_answer(e.answer, r["answer"].get<std::string>()).correct;
      ++graded;
    }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("math: %lld samples graded in %.3f s: %.0f samples/s (%lld correct)\n", static_cast<long long>(graded), s,
              graded / s, static_cast<long long>(correct));

  auto code = read_jsonl(dir + "/humaneval.jsonl");
  std::atomic<size_t> next{0};
  std::atomic<int64_t> passed{0};
  t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int w = 0; w < workers; ++w)
    pool.emplace_back([&] {
      for (size_t i; (i = next++) < code.size();)
        passed += eval::run_python(eval::humaneval_program(code[i], code[i]["canonical_solution"], true)).passed();
    });
  for (auto& t : pool) t.join();
  s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("code: %zu HumanEval samples in the sandbox in %.2f s with %d workers: %.1f samples/s (%lld passed; %s)\n",
              code.size(), s, workers, code.size() / s, static_cast<long long>(passed.load()),
              eval::sandbox_isolation().describe().c_str());
  return 0;
}
