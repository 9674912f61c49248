// The continuous-batching Scheduler over the CUDA engine: with fp32 weights it gives the CPU engine's
// greedy tokens on every fixture model (chunked prefill interleaved with decode), n > 1 choices and
// repeated requests are reproducible per seed, the prompt-state cache skips cached prefixes, and
// cancellations leave no slot behind.
#include <gtest/gtest.h>

#ifdef PCM_HAVE_CUDA
#include <chrono>
#include <map>

#include "cuda_test_util.h"
#include "scheduler_drive.h"
#include "engine/cuda_engine.h"
#include "engine/scheduler.h"
#include "model/model.h"

namespace pcm {
namespace {

using namespace std::chrono_literals;

std::vector<int32_t> ramp(int n, int start, int64_t vocab) {
  std::vector<int32_t> v;
  for (int i = 0; i < n; ++i) v.push_back(static_cast<int32_t>((start + 7 * i) % (vocab - 3) + 3));
  return v;
}

GenerationRequest request(std::vector<int32_t> prompt, int64_t max_tokens, float temperature = 0.0f, uint64_t seed = 0) {
  GenerationRequest r;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  r.sampling.temperature = temperature;
  r.sampling.seed = seed;
  return r;
}

// tokens[request][choice] of test::drive.
std::vector<std::vector<std::vector<int32_t>>> drive(Scheduler& s, std::vector<RequestHandle>& handles) {
  std::vector<std::vector<std::vector<int32_t>>> out;
  for (auto& c : test::drive(s, handles)) out.push_back(std::move(c.tokens));
  return out;
}

std::unique_ptr<InferenceEngine> cuda_engine(const std::string& model, int64_t slots, int64_t batch_tokens) {
  CudaEngineOptions o;
  o.model_dir = test::testdata("models/" + model);
  o.fp32_weights = true;
  o.max_slots = slots;
  o.max_batch_tokens = batch_tokens;
  return make_cuda_engine(o);
}

// Prompts of several lengths (one longer than a step's token budget) submitted together.
std::vector<std::vector<std::vector<int32_t>>> run_batch(Scheduler& s, int64_t vocab) {
  std::vector<RequestHandle> h;
  for (int k = 0; k < 4; ++k) {
    auto sub = s.submit(request(ramp(5 + 23 * k, 11 * k + 1, vocab), 12));
    EXPECT_EQ(sub.status, SubmitStatus::Accepted) << sub.message;
    h.push_back(std::move(sub.handle));
  }
  return drive(s, h);
}

class SchedulerCuda : public ::testing::TestWithParam<std::string> {};

TEST_P(SchedulerCuda, GreedyTokensMatchTheCpuEngine) {
  PCM_REQUIRE_GPU();
  SchedulerConfig cfg;
  cfg.max_slots = 4;
  cfg.max_batch_tokens = 32;
  Mamba2Model cpu_model = Mamba2Model::load(test::testdata("models/" + GetParam()));
  cpu_model.set_exact(true);
  const int64_t V = cpu_model.vocab_size();
  Scheduler cpu(cpu_model, nullptr, cfg);
  Scheduler gpu(cuda_engine(GetParam(), 4, 32), nullptr, cfg);
  EXPECT_EQ(gpu.engine().device(), "cuda");
  const auto want = run_batch(cpu, V);
  const auto got = run_batch(gpu, V);
  EXPECT_EQ(got, want);
  EXPECT_EQ(gpu.free_slots(), 4);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, SchedulerCuda,
                         ::testing::Values("tiny-g2", "tiny-tied", "small-g4", "tiny-mistral-bf16"));

TEST(SchedulerCudaSampling, ChoicesAndRepeatsAreReproduciblePerSeed) {
  PCM_REQUIRE_GPU();
  SchedulerConfig cfg;
  cfg.max_slots = 4;
  Scheduler s(cuda_engine("tiny-g2", 4, 64), nullptr, cfg);
  const int64_t V = s.vocab_size();
  GenerationRequest r = request(ramp(17, 3, V), 10, 1.0f, 42);
  r.n = 3;
  r.sampling.top_k = 50;
  std::vector<RequestHandle> h;
  h.push_back(s.submit(r).handle);
  const auto three = drive(s, h)[0];
  ASSERT_EQ(three.size(), 3u);
  EXPECT_NE(three[0], three[1]);  // different seeds
  // Choice i alone with seed 42 + i, next to an unrelated request: the same tokens.
  for (uint64_t i = 0; i < 3; ++i) {
    h.clear();
    GenerationRequest one = r;
    one.n = 1;
    one.sampling.seed = 42 + i;
    h.push_back(s.submit(one).handle);
    h.push_back(s.submit(request(ramp(9, 5, V), 6, 0.7f, 9)).handle);
    EXPECT_EQ(drive(s, h)[0][0], three[i]) << "choice " << i;
  }
  EXPECT_EQ(s.free_slots(), 4);
}

TEST(SchedulerCudaCache, PrefixCacheSkipsPrefillAndKeepsOutputs) {
  PCM_REQUIRE_GPU();
  SchedulerConfig cfg;
  cfg.max_slots = 2;
  cfg.state_cache_bytes = 8 << 20;
  Scheduler s(cuda_engine("tiny-g2", 2, 64), nullptr, cfg);
  SchedulerConfig plain_cfg = cfg;
  plain_cfg.state_cache_bytes = 0;
  Scheduler plain(cuda_engine("tiny-g2", 2, 64), nullptr, plain_cfg);
  const int64_t V = s.vocab_size();
  const auto system = ramp(30, 11, V);
  std::vector<RequestHandle> h;
  h.push_back(s.submit(request(system, 5)).handle);
  const auto turn1 = drive(s, h)[0][0];
  EXPECT_EQ(h[0].usage().cached_tokens, 0);

  // Same prompt again: state and logits come from the cache, nothing is prefilled.
  const int64_t prefilled = s.stats().prefill_tokens;
  h.clear();
  h.push_back(s.submit(request(system, 5)).handle);
  EXPECT_EQ(drive(s, h)[0][0], turn1);
  EXPECT_EQ(h[0].usage().cached_tokens, 30);
  EXPECT_EQ(s.stats().prefill_tokens, prefilled);

  // The next turn extends prompt + answer: only the new tokens run, and the output is unchanged.
  auto next = system;
  next.insert(next.end(), turn1.begin(), turn1.end());
  const auto user = ramp(9, 77, V);
  next.insert(next.end(), user.begin(), user.end());
  h.clear();
  h.push_back(s.submit(request(next, 6)).handle);
  const auto cached = drive(s, h)[0][0];
  EXPECT_EQ(h[0].usage().cached_tokens, 30 + 4);  // the answer's last token was never fed
  h.clear();
  h.push_back(plain.submit(request(next, 6)).handle);
  EXPECT_EQ(drive(plain, h)[0][0], cached);

  // n > 1 from a cached prompt: every choice starts from the copied state.
  GenerationRequest two = request(system, 5);
  two.n = 2;
  h.clear();
  h.push_back(s.submit(two).handle);
  const auto both = drive(s, h)[0];
  EXPECT_EQ(both[0], turn1);
  EXPECT_EQ(both[1], turn1);
  EXPECT_EQ(s.free_slots(), 2);
}

TEST(SchedulerCudaCancel, CancelledRequestsLeaveNoSlotBehind) {
  PCM_REQUIRE_GPU();
  SchedulerConfig cfg;
  cfg.max_slots = 3;
  Scheduler s(cuda_engine("tiny-g2", 3, 64), nullptr, cfg);
  const int64_t V = s.vocab_size();
  std::vector<SubmitResult> subs;
  for (int k = 0; k < 6; ++k) subs.push_back(s.submit(request(ramp(8 + k, k, V), k % 2 ? 100000 : 5, 0.8f, k)));
  GenerationRequest many = request(ramp(12, 1, V), 100000);
  many.n = 2;
  subs.push_back(s.submit(many));
  for (int i = 0; i < 4; ++i) s.step();
  EXPECT_EQ(s.free_slots(), 0);
  for (size_t k = 0; k < subs.size(); ++k)
    if (k % 2 || k == subs.size() - 1) subs[k].handle.cancel();  // running and queued ones
  std::vector<RequestHandle> rest;
  for (size_t k = 0; k < subs.size(); ++k)
    if (!(k % 2 || k == subs.size() - 1)) rest.push_back(std::move(subs[k].handle));
  drive(s, rest);
  while (s.step()) {
  }
  EXPECT_EQ(s.free_slots(), 3);
  const SchedulerStats st = s.stats();
  EXPECT_EQ(st.slots_used, 0);
  EXPECT_EQ(st.running_requests, 0);
  EXPECT_EQ(st.requests_cancelled, 4);
}

TEST(SchedulerCudaEmbeddings, AreRefusedWithAClearError) {
  PCM_REQUIRE_GPU();
  Scheduler s(cuda_engine("tiny-g2", 1, 64), nullptr, SchedulerConfig{1});
  std::future<EmbeddingResult> f;
  std::string msg;
  ASSERT_EQ(s.submit_embeddings({{3, 4, 5}}, &f, &msg), SubmitStatus::Accepted);
  s.step();
  EXPECT_NE(f.get().error.find("CPU engine"), std::string::npos);
}

}  // namespace
}  // namespace pcm
#endif
