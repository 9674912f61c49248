#include "engine/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "util/error.h"

namespace pcm {
namespace {

TEST(Sampler, GreedyIsFirstArgmax) {
  std::vector<float> l = {0.1f, 3.0f, -1.0f, 3.0f};
  Sampler s({0.0f});
  EXPECT_EQ(s.sample(l.data(), 4), 1);
}

TEST(Sampler, TopKOneIsGreedy) {
  std::vector<float> l = {0.1f, 2.0f, 1.9f, -3.0f};
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 1;
  Sampler s(p);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(s.sample(l.data(), 4), 1);
}

// 1 / T overflows float below ~3e-39: the draw took the highest ids instead of the greedy one.
TEST(Sampler, TinyTemperatureIsGreedy) {
  std::vector<float> l = {0.5f, -2.0f, 0.0f, 3.0f, 2.9f, -0.0f, 1.0f, -5.0f};
  for (float t : {1e-45f, 1e-39f, 1e-38f, 1e-30f}) {
    SamplingParams p;
    p.temperature = t;
    p.seed = 3;
    Sampler s(p);
    for (int i = 0; i < 20; ++i) EXPECT_EQ(s.sample(l.data(), 8), 3) << "T " << t;
  }
}

TEST(Sampler, FrequenciesFollowSoftmax) {
  std::vector<float> l = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
  SamplingParams p;
  p.seed = 42;
  Sampler s(p);
  std::map<int, int> counts;
  const int n = 20000;
  for (int i = 0; i < n; ++i) counts[s.sample(l.data(), 3)]++;
  EXPECT_NEAR(counts[0] / double(n), 0.5, 0.02);
  EXPECT_NEAR(counts[1] / double(n), 0.3, 0.02);
  EXPECT_NEAR(counts[2] / double(n), 0.2, 0.02);
}

TEST(Sampler, TopPAndMinPCutTheTail) {
  std::vector<float> l = {std::log(0.6f), std::log(0.25f), std::log(0.1f), std::log(0.05f)};
  SamplingParams p;
  p.top_p = 0.8f;  // keeps 0.6 + 0.25
  Sampler s(p);
  for (int i = 0; i < 2000; ++i) EXPECT_LT(s.sample(l.data(), 4), 2);
  SamplingParams q;
  q.min_p = 0.3f;  // keeps p >= 0.18
  Sampler t(q);
  for (int i = 0; i < 2000; ++i) EXPECT_LT(t.sample(l.data(), 4), 2);
}

TEST(Sampler, SameSeedSameDraws) {
  std::vector<float> l(100);
  for (int i = 0; i < 100; ++i) l[static_cast<size_t>(i)] = std::sin(float(i));
  SamplingParams p;
  p.seed = 9;
  p.temperature = 0.7f;
  Sampler a(p), b(p);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.sample(l.data(), 100), b.sample(l.data(), 100));
}

TEST(Sampler, InvalidParametersAreRejected) {
  SamplingParams p;
  p.temperature = -1.0f;
  EXPECT_THROW(Sampler{p}, Error);
  p = {};
  p.top_p = 1.5f;
  EXPECT_THROW(Sampler{p}, Error);
  p = {};
  p.min_p = -0.1f;
  EXPECT_THROW(Sampler{p}, Error);
}

}  // namespace
}  // namespace pcm
