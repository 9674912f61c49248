// The `pcm` commands with --device cuda, run as processes: the server drains on SIGTERM with streams in
// flight and exits 0; `pcm score` matches the CPU's logits; `pcm chat` answers two turns; `pcm bench` refuses a batch
// past the GPU's memory, naming the option.
#include <gtest/gtest.h>

#ifdef PCM_HAVE_CUDA
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cuda_test_util.h"
#include "io/safetensors.h"
#include "serve_process.h"
#include "test_util.h"

namespace pcm::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// Streams one completion of `tokens` tokens; true when it ends with usage == tokens and [DONE].
bool stream_to_the_end(int port, int tokens) {
  const json body{{"prompt", "Keep going"}, {"max_tokens", tokens}, {"ignore_eos", true}, {"stream", true},
                  {"stream_options", {{"include_usage", true}}}};
  std::string buf;
  const auto r = post_receiving(port, "/v1/completions", body.dump(), [&](const char* d, size_t n) {
    buf.append(d, n);
    return true;
  });
  if (!r.sent || r.status != 200) return false;
  return buf.find("\"completion_tokens\":" + std::to_string(tokens)) != std::string::npos &&
         buf.find("data: [DONE]") != std::string::npos;
}

TEST(CudaCli, ServeDrainsStreamsInFlightOnSigtermAndExitsZero) {
  PCM_REQUIRE_GPU();
  const int port = free_port();
  const pid_t pid = spawn_pcm_serve(port, {"--device", "cuda", "--model", testdata("models/tiny-mistral-bf16"),
                                           "--max-slots", "8", "--shutdown-grace", "30"});
  ASSERT_GE(pid, 0);
  // CUDA context + graph capture: allow 30 s
  ASSERT_TRUE(wait_until_healthy(port, 30s)) << "pcm serve --device cuda did not come up";
  constexpr int kStreams = 4, kTokens = 400;
  std::atomic<int> finished{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < kStreams; ++i)
    clients.emplace_back([&] { finished += stream_to_the_end(port, kTokens) ? 1 : 0; });
  std::this_thread::sleep_for(300ms);  // streams admitted and decoding
  kill(pid, SIGTERM);
  for (auto& t : clients) t.join();
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_EQ(finished.load(), kStreams) << "streams in flight at SIGTERM must run to their end";
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(CudaCli, ScoreMatchesTheCpuLogits) {
  PCM_REQUIRE_GPU();
  TempDir tmp;
  const std::string model = testdata("models/tiny-g2"), ids = "1,5,9,200,31,7,64,3,12,99,100,4";
  for (const char* device : {"cpu", "cuda"}) {
    auto r = run_pcm(std::string("score --model ") + model + " --prompt-ids " + ids + " --device " + device +
                     " --out " + tmp.file(std::string(device) + ".safetensors"));
    ASSERT_EQ(r.exit_code, 0) << device << ": " << r.err;
  }
  SafetensorsFile cpu(tmp.file("cpu.safetensors")), gpu(tmp.file("cuda.safetensors"));
  const auto a = tensor_to_f32(cpu.get("logits")), b = tensor_to_f32(gpu.get("logits"));
  ASSERT_EQ(a.size(), b.size());
  EXPECT_LT(rel_error(b, a), 1e-4);  // fp32 weights on the GPU (pcm score's rule), TF32-free paths
}

TEST(CudaCli, ChatAnswersTwoTurns) {
  PCM_REQUIRE_GPU();
  auto r = run_pcm("chat --device cuda --model " + testdata("models/tiny-mistral-bf16") +
                       " --max-new-tokens 8 --temperature 0",
                   "Hello there\nAnd again\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(r.out.empty());
}

// A batch whose state pool cannot fit on the GPU is refused before anything is allocated, naming the option (it ended
// in the pool's "out of GPU memory: asked for ..." with no option named).
TEST(CudaCli, BenchBatchPastTheGpusMemoryNamesTheOption) {
  PCM_REQUIRE_GPU();
  auto r = run_pcm("bench --device cuda --shape codestral-7b --cuda-batches 1,100000 --cuda-prefill 64");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--cuda-batches 100000: 100000 sequences (a state and a logits row each) of "),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("this GPU has free beside the weights"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace pcm::test

#else
TEST(CudaCli, BuiltWithoutCuda) { GTEST_SKIP() << "built without CUDA"; }
#endif
