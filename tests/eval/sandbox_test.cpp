// The code sandbox: all 164 HumanEval canonical solutions pass; wrong code fails; hostile programs each
// end as a failed sample while the harness carries on (infinite loop, fork bomb, memory hog, huge
// output, writing outside its directory, killing its parent, a network connection).
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "eval/code_tasks.h"
#include "eval/sandbox.h"
#include "io/jsonl.h"
#include "test_util.h"

namespace pcm::eval {
namespace {

SandboxLimits quick() {
  SandboxLimits l;
  l.cpu_seconds = 2;
  l.wall_seconds = 4;
  l.address_space_bytes = uint64_t{512} << 20;
  return l;
}

TEST(Sandbox, HumanEvalCanonicalSolutionsAllPass) {
  auto rows = read_jsonl(test::testdata("../data/benchmarks/humaneval.jsonl"));
  ASSERT_EQ(rows.size(), 164u);
  std::vector<std::string> failures(rows.size());
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i; (i = next++) < rows.size();) {
      SandboxResult r = run_python(humaneval_program(rows[i], rows[i]["canonical_solution"], true), quick());
      if (!r.passed()) failures[i] = rows[i]["task_id"].get<std::string>() + ": " + r.err.substr(0, 300);
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < 4; ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  for (const auto& f : failures)
    if (!f.empty()) ADD_FAILURE() << f;
  RecordProperty("isolation", sandbox_isolation().describe());
}

TEST(Sandbox, WrongCodeFailsAndFencedCodeIsExtracted) {
  auto rows = read_jsonl(test::testdata("../data/benchmarks/humaneval.jsonl"));
  const auto& row = rows[0];
  EXPECT_FALSE(run_python(humaneval_program(row, "    return True\n", true), quick()).passed());
  std::string chat = "<think>try ```python\nbad\n```</think>Here:\n```python\n" + row["prompt"].get<std::string>() +
                     row["canonical_solution"].get<std::string>() + "```\nDone.";
  EXPECT_TRUE(run_python(humaneval_program(row, chat, false), quick()).passed());
}

TEST(SandboxHostile, InfiniteLoopIsStopped) {
  auto r = run_python("while True:\n    pass\n", quick());
  EXPECT_FALSE(r.passed());
  EXPECT_LT(r.seconds, 6.0);
}

TEST(SandboxHostile, SleepingForeverHitsTheWallClock) {
  auto r = run_python("import time\ntime.sleep(100)\n", quick());
  EXPECT_TRUE(r.timed_out);
  EXPECT_LT(r.seconds, 6.0);
}

TEST(SandboxHostile, ForkBombEnds) {
  auto r = run_python("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n", quick());
  EXPECT_FALSE(r.passed());
  EXPECT_LT(r.seconds, 8.0);
  // The harness can still start processes afterwards.
  EXPECT_TRUE(run_python("print('ok')\n", quick()).passed());
}

TEST(SandboxHostile, MemoryHogFails) {
  auto r = run_python("x = bytearray(4 << 30)\n", quick());
  EXPECT_FALSE(r.passed());
  EXPECT_NE(r.err.find("MemoryError"), std::string::npos) << r.err;
}

TEST(SandboxHostile, HugeOutputIsTruncated) {
  auto r = run_python("import sys\nfor _ in range(200000):\n    sys.stdout.write('x' * 100)\n", quick());
  EXPECT_LE(r.out.size(), quick().output_bytes);
}

TEST(SandboxHostile, WritingOutsideItsDirectoryFails) {
  test::TempDir dir;  // owned by the harness's user
  const std::string target = dir.file("stolen.txt");
  auto r = run_python("open('" + target + "', 'w').write('x')\n", quick());
  if (!sandbox_isolation().unprivileged_uid) GTEST_SKIP() << "not root: the program runs as our own user here";
  EXPECT_FALSE(r.passed());
  EXPECT_FALSE(std::filesystem::exists(target));
}

TEST(SandboxHostile, KillingItsParentDoesNotKillTheHarness) {
  auto r = run_python("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nos.kill(1, signal.SIGKILL)\n", quick());
  // We are still here; the program may or may not report an error.
  SUCCEED() << r.exit_code;
  EXPECT_TRUE(run_python("print(1)\n", quick()).passed());
}

TEST(SandboxHostile, NetworkConnectionFails) {
  if (!sandbox_isolation().network_namespace) GTEST_SKIP() << "no network namespace on this machine: " << sandbox_isolation().describe();
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(s, 4), 0);
  socklen_t len = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  auto r = run_python("import socket\nsocket.create_connection(('127.0.0.1', " + std::to_string(ntohs(a.sin_port)) +
                          "), timeout=2)\nprint('connected')\n",
                      quick());
  close(s);
  EXPECT_FALSE(r.passed());
  EXPECT_EQ(r.out.find("connected"), std::string::npos);
}

}  // namespace
}  // namespace pcm::eval
