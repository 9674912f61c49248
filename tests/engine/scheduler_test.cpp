#include "engine/scheduler.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <thread>

#include "engine/generator.h"
#include "scheduler_drive.h"
#include "test_util.h"
#include "util/error.h"

namespace pcm {
namespace {

using namespace std::chrono_literals;
using test::drive;

// Tiny models on a shared 2-core machine: OpenMP teams only add barrier spinning.
const int kSingleThread = (omp_set_num_threads(1), 0);

Mamba2Model tiny_model() {
  Mamba2Model m = Mamba2Model::load(test::testdata("models/tiny-g2"));  // vocab 256, chunk 8
  m.set_exact(true);
  return m;
}

std::vector<int32_t> ramp(int n, int start) {
  std::vector<int32_t> v;
  for (int i = 0; i < n; ++i) v.push_back(static_cast<int32_t>((start + 7 * i) % 250 + 3));
  return v;
}

std::vector<int32_t> reference(Mamba2Model& m, const std::vector<int32_t>& prompt, int64_t n, SamplingParams p = {0.0f}) {
  SequenceState s = m.new_state();
  GenerateOptions o;
  o.max_new_tokens = n;
  o.sampling = p;
  return generate(m, s, prompt, o).tokens;
}

GenerationRequest greedy(std::vector<int32_t> prompt, int64_t max_tokens) {
  GenerationRequest r;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  r.sampling.temperature = 0.0f;
  return r;
}

TEST(Scheduler, InterleavedChunkedPrefillAndDecodeMatchSequentialGeneration) {
  Mamba2Model model = tiny_model();
  SchedulerConfig cfg;
  cfg.max_slots = 4;
  cfg.max_batch_tokens = 16;  // forces chunked prefills that share steps with running decodes
  Scheduler s(model, nullptr, cfg);
  std::vector<std::vector<int32_t>> prompts = {ramp(3, 1), ramp(37, 5), ramp(20, 9), ramp(1, 4), ramp(50, 2)};
  std::vector<RequestHandle> handles;
  for (auto& p : prompts) {
    auto r = s.submit(greedy(p, 12));
    ASSERT_EQ(r.status, SubmitStatus::Accepted) << r.message;
    handles.push_back(std::move(r.handle));
  }
  auto out = drive(s, handles);
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(out[i].tokens[0], reference(model, prompts[i], 12)) << "request " << i;
    EXPECT_EQ(out[i].finish[0], "length");
    EXPECT_EQ(handles[i].usage().completion_tokens, 12);
    EXPECT_EQ(handles[i].usage().prompt_tokens, static_cast<int64_t>(prompts[i].size()));
  }
  auto st = s.stats();
  EXPECT_EQ(st.slots_used, 0);
  EXPECT_EQ(st.requests_finished, 5);
  EXPECT_EQ(st.generated_tokens, 60);
  EXPECT_LE(st.step_rows, st.steps * 16);
}

TEST(Scheduler, RunningStreamGetsATokenEveryStepWhileALongPromptPrefills) {
  Mamba2Model model = tiny_model();
  SchedulerConfig cfg;
  cfg.max_batch_tokens = 16;
  Scheduler s(model, nullptr, cfg);
  auto a = s.submit(greedy(ramp(4, 1), 1000)).handle;
  s.step();  // a: prompt done, first token
  auto b = s.submit(greedy(ramp(200, 3), 2)).handle;
  size_t a_tokens = 0;
  std::vector<ChoiceEvent> ev;
  a.poll(ev, 0ms);
  for (auto& e : ev) a_tokens += e.tokens.size();
  int steps = 0;
  bool b_started = false;
  while (!b_started && steps < 100) {
    s.step();
    ++steps;
    ev.clear();
    a.poll(ev, 0ms);
    size_t got = 0;
    for (auto& e : ev) got += e.tokens.size();
    EXPECT_EQ(got, 1u) << "step " << steps;  // decode never waits for the prefill
    a_tokens += got;
    ev.clear();
    b.poll(ev, 0ms);
    b_started = !ev.empty();
  }
  EXPECT_TRUE(b_started);
  EXPECT_GE(steps, 200 / 16);  // the prompt was prefilled over many steps, beside the decode row
  a.cancel();
}

TEST(Scheduler, ChoicesOfOneRequestSampleWithTheirOwnSeeds) {
  Mamba2Model model = tiny_model();
  SchedulerConfig cfg;
  cfg.max_slots = 3;
  Scheduler s(model, nullptr, cfg);
  GenerationRequest r = greedy(ramp(10, 3), 8);
  r.n = 3;
  r.sampling.temperature = 1.0f;
  r.sampling.seed = 42;
  auto sub = s.submit(r);
  ASSERT_EQ(sub.status, SubmitStatus::Accepted);
  std::vector<RequestHandle> handles;
  handles.push_back(std::move(sub.handle));
  auto out = drive(s, handles);
  ASSERT_EQ(out[0].tokens.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    SamplingParams p;
    p.temperature = 1.0f;
    p.seed = 42 + static_cast<uint64_t>(i);
    EXPECT_EQ(out[0].tokens[static_cast<size_t>(i)], reference(model, r.prompt, 8, p)) << "choice " << i;
  }
  EXPECT_EQ(handles[0].usage().completion_tokens, 24);
}

TEST(Scheduler, StopIdEndsChoiceAndIsReported) {
  Mamba2Model model = tiny_model();
  Scheduler s(model, nullptr, SchedulerConfig{});
  auto prompt = ramp(6, 1);
  auto ref = reference(model, prompt, 10);
  GenerationRequest r = greedy(prompt, 10);
  r.stop_ids = {ref[3]};
  std::vector<RequestHandle> h;
  h.push_back(s.submit(r).handle);
  auto out = drive(s, h);
  const size_t first = static_cast<size_t>(std::find(ref.begin(), ref.end(), ref[3]) - ref.begin());
  EXPECT_EQ(out[0].tokens[0], std::vector<int32_t>(ref.begin(), ref.begin() + static_cast<long>(first) + 1));
  EXPECT_EQ(out[0].finish[0], "stop");
}

TEST(Scheduler, PromptStateCacheSkipsTheCachedPrefixAndKeepsOutputs) {
  Mamba2Model model = tiny_model();
  SchedulerConfig cfg;
  cfg.state_cache_bytes = 1 << 20;
  Scheduler s(model, nullptr, cfg);
  const auto system = ramp(30, 11);
  std::vector<RequestHandle> h;
  h.push_back(s.submit(greedy(system, 5)).handle);
  auto turn1 = drive(s, h)[0].tokens[0];
  EXPECT_EQ(h[0].usage().cached_tokens, 0);

  // Same prompt again: the cache holds its state and logits, so nothing is prefilled.
  const int64_t prefilled_before = s.stats().prefill_tokens;
  h.clear();
  h.push_back(s.submit(greedy(system, 5)).handle);
  EXPECT_EQ(drive(s, h)[0].tokens[0], turn1);
  EXPECT_EQ(h[0].usage().cached_tokens, 30);
  EXPECT_EQ(s.stats().prefill_tokens, prefilled_before);

  // The next turn extends prompt + answer: only the new tokens are prefilled.
  std::vector<int32_t> next = system;
  next.insert(next.end(), turn1.begin(), turn1.end());
  auto user = ramp(9, 77);
  next.insert(next.end(), user.begin(), user.end());
  h.clear();
  h.push_back(s.submit(greedy(next, 6)).handle);
  EXPECT_EQ(drive(s, h)[0].tokens[0], reference(model, next, 6));
  EXPECT_EQ(h[0].usage().cached_tokens, 30 + 4);  // the answer's last token was never fed
  EXPECT_EQ(s.stats().prefill_tokens, prefilled_before + static_cast<int64_t>(next.size()) - 34);
}

TEST(Scheduler, CheckpointStoresASharedSystemPromptForOtherConversations) {
  Mamba2Model model = tiny_model();
  SchedulerConfig cfg;
  cfg.state_cache_bytes = 1 << 20;
  cfg.max_batch_tokens = 16;
  Scheduler s(model, nullptr, cfg);
  const auto system = ramp(21, 5);  // not a multiple of the chunk: the checkpoint still splits there
  auto with_user = [&](int seed) {
    auto p = system;
    auto u = ramp(7, seed);
    p.insert(p.end(), u.begin(), u.end());
    return p;
  };
  GenerationRequest a = greedy(with_user(100), 4);
  a.cache_checkpoints = {21};
  std::vector<RequestHandle> h;
  h.push_back(s.submit(a).handle);
  EXPECT_EQ(drive(s, h)[0].tokens[0], reference(model, a.prompt, 4));
  GenerationRequest b = greedy(with_user(200), 4);
  h.clear();
  h.push_back(s.submit(b).handle);
  EXPECT_EQ(drive(s, h)[0].tokens[0], reference(model, b.prompt, 4));
  EXPECT_EQ(h[0].usage().cached_tokens, 21);
  GenerationRequest bad = greedy(with_user(1), 4);
  bad.cache_checkpoints = {28};
  EXPECT_EQ(s.submit(bad).status, SubmitStatus::Invalid);
}

TEST(Scheduler, CancelledRequestFreesItsSlotAtTheNextStep) {
  Mamba2Model model = tiny_model();
  SchedulerConfig cfg;
  cfg.max_slots = 1;
  Scheduler s(model, nullptr, cfg);
  auto long_run = s.submit(greedy(ramp(5, 1), 100000));
  ASSERT_EQ(long_run.status, SubmitStatus::Accepted);
  auto waiting = s.submit(greedy(ramp(4, 2), 3));
  ASSERT_EQ(waiting.status, SubmitStatus::Accepted);
  for (int i = 0; i < 5; ++i) s.step();
  EXPECT_EQ(s.stats().slots_used, 1);
  EXPECT_EQ(s.stats().queue_depth, 1);
  long_run.handle.cancel();
  std::vector<RequestHandle> h;
  h.push_back(std::move(waiting.handle));
  auto out = drive(s, h);
  EXPECT_EQ(out[0].tokens[0].size(), 3u);
  EXPECT_TRUE(long_run.handle.finished());
  auto st = s.stats();
  EXPECT_EQ(st.slots_used, 0);
  EXPECT_EQ(st.requests_cancelled, 1);
}

TEST(Scheduler, QueueIsBoundedAndBadRequestsAreRefused) {
  Mamba2Model model = tiny_model();
  SchedulerConfig cfg;
  cfg.max_slots = 1;
  cfg.max_queue = 1;
  Scheduler s(model, nullptr, cfg);
  auto a = s.submit(greedy(ramp(3, 1), 2));
  auto b = s.submit(greedy(ramp(3, 1), 2));
  auto c = s.submit(greedy(ramp(3, 1), 2));
  EXPECT_EQ(a.status, SubmitStatus::Accepted);
  EXPECT_EQ(b.status, SubmitStatus::Accepted);
  EXPECT_EQ(c.status, SubmitStatus::QueueFull);
  EXPECT_EQ(s.submit(greedy({}, 2)).status, SubmitStatus::Invalid);
  EXPECT_EQ(s.submit(greedy({1, 256}, 2)).status, SubmitStatus::Invalid);
  EXPECT_EQ(s.submit(greedy({1, 2}, 0)).status, SubmitStatus::Invalid);
  GenerationRequest many = greedy({1, 2}, 2);
  many.n = 2;
  EXPECT_EQ(s.submit(many).status, SubmitStatus::Invalid);
  GenerationRequest stops = greedy({1, 2}, 2);
  stops.stop_strings = {"x"};
  EXPECT_EQ(s.submit(stops).status, SubmitStatus::Invalid);  // no tokenizer
  s.stop();
  EXPECT_TRUE(a.handle.finished());
  EXPECT_TRUE(b.handle.finished());
  EXPECT_EQ(s.submit(greedy({1, 2}, 2)).status, SubmitStatus::ShuttingDown);
}

TEST(Scheduler, SlotsForMemoryBudget) {
  EXPECT_EQ(SchedulerConfig::slots_for_memory(10.5 * 1000, 1000), 9);  // one state is the embedding scratch
  EXPECT_THROW(SchedulerConfig::slots_for_memory(1500, 1000), Error);
  EXPECT_EQ(SchedulerConfig::slots_for_memory(1e12, 1000), SchedulerConfig::kMaxSlotsFromMemory);
  EXPECT_THROW(SchedulerConfig::slots_for_memory(-1, 1000), Error);
  // the CUDA engine keeps no scratch state: every state a slot, and a budget under one state is refused, not rounded up
  EXPECT_EQ(SchedulerConfig::slots_for_memory(10.5 * 1000, 1000, 0), 10);
  const std::string message = test::error_of([] { SchedulerConfig::slots_for_memory(900, 1000, 0); });
  EXPECT_NE(message.find("a memory budget of 900 bytes does not hold 1 sequence state (1000 bytes each: one slot)"),
            std::string::npos)
      << message;
}

TEST(Scheduler, EmbeddingsAreNormalisedMeanOfFinalHiddenStates) {
  Mamba2Model model = tiny_model();
  SchedulerConfig cfg;
  cfg.max_batch_tokens = 16;  // the 40-token input is embedded in pieces
  Scheduler s(model, nullptr, cfg);
  std::vector<std::vector<int32_t>> inputs = {ramp(5, 1), ramp(40, 3)};
  std::future<EmbeddingResult> fut;
  std::string msg;
  ASSERT_EQ(s.submit_embeddings(inputs, &fut, &msg), SubmitStatus::Accepted) << msg;
  s.step();
  EmbeddingResult r = fut.get();
  ASSERT_TRUE(r.error.empty()) << r.error;
  ASSERT_EQ(r.vectors.size(), 2u);
  const int64_t d = model.config().hidden_size;
  for (size_t k = 0; k < inputs.size(); ++k) {
    SequenceState st = model.new_state();
    std::vector<float> hidden(inputs[k].size() * static_cast<size_t>(d));
    model.final_hidden(inputs[k], st, hidden.data());
    std::vector<double> mean(static_cast<size_t>(d));
    for (size_t t = 0; t < inputs[k].size(); ++t)
      for (int64_t j = 0; j < d; ++j) mean[static_cast<size_t>(j)] += hidden[t * static_cast<size_t>(d) + static_cast<size_t>(j)];
    double norm = 0;
    for (double v : mean) norm += v * v;
    norm = std::sqrt(norm);
    double dot = 0, self = 0;
    for (int64_t j = 0; j < d; ++j) {
      dot += r.vectors[k][static_cast<size_t>(j)] * mean[static_cast<size_t>(j)] / norm;
      self += static_cast<double>(r.vectors[k][static_cast<size_t>(j)]) * r.vectors[k][static_cast<size_t>(j)];
    }
    EXPECT_NEAR(self, 1.0, 1e-5);
    EXPECT_NEAR(dot, 1.0, 1e-4);
  }
  EXPECT_EQ(s.submit_embeddings({{}}, &fut, &msg), SubmitStatus::Invalid);
  EXPECT_EQ(s.submit_embeddings({{999}}, &fut, &msg), SubmitStatus::Invalid);
}

TEST(Scheduler, EngineThreadServesConcurrentSubmitters) {
  Mamba2Model model = tiny_model();
  SchedulerConfig cfg;
  cfg.max_slots = 3;
  cfg.max_queue = 64;
  Scheduler s(model, nullptr, cfg);
  s.start();
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int c = 0; c < 8; ++c)
    clients.emplace_back([&, c] {
      auto prompt = ramp(5 + c, c);
      auto r = s.submit(greedy(prompt, 7));
      if (r.status != SubmitStatus::Accepted) return;
      std::vector<int32_t> got;
      std::vector<ChoiceEvent> ev;
      while (!r.handle.poll(ev, 50ms)) {
      }
      for (auto& e : ev) got.insert(got.end(), e.tokens.begin(), e.tokens.end());
      if (got.size() == 7) ++ok;
    });
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 8);
  EXPECT_TRUE(s.wait_idle(1s));
  EXPECT_EQ(s.stats().slots_used, 0);
  s.stop();
}

}  // namespace
}  // namespace pcm
