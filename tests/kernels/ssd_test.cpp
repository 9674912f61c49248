// The chunked SSD scan equals the recurrence, for lengths around the chunk size, from a non-zero state.
#include <gtest/gtest.h>

#include <random>

#include "kernels/cpu/ssd.h"
#include "test_util.h"

namespace pcm {
namespace {

struct SsdCase {
  const char* name;  // the model the shape comes from
  cpu::SsdShape shape;
  int64_t Q;
};

class SsdChunkedVsRecurrent : public ::testing::TestWithParam<std::tuple<SsdCase, int64_t>> {};

TEST_P(SsdChunkedVsRecurrent, SameOutputsAndState) {
  const auto& [c, length_code] = GetParam();
  const cpu::SsdShape s = c.shape;
  const int64_t Q = c.Q;
  const int64_t lengths[] = {1, Q - 1, Q, Q + 1, 3 * Q + 5};
  const int64_t T = lengths[length_code];
  const int64_t stride = s.H * s.P + 2 * s.G * s.N + 3;  // padded rows, as the conv output is read
  std::mt19937 rng(static_cast<unsigned>(T * 31 + s.H));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uni(0.0f, 1.0f);
  std::vector<float> xbc(static_cast<size_t>(T * stride)), dt(static_cast<size_t>(T * s.H));
  std::vector<float> A(static_cast<size_t>(s.H)), D(static_cast<size_t>(s.H));
  for (auto& v : xbc) v = normal(rng);
  for (auto& v : dt) v = 0.001f + 0.2f * uni(rng);
  for (auto& v : A) v = -(1.0f + 15.0f * uni(rng));
  for (auto& v : D) v = normal(rng);
  std::vector<float> state0(static_cast<size_t>(s.H * s.P * s.N));
  for (auto& v : state0) v = normal(rng);
  cpu::SsdInputs in{xbc.data(), xbc.data() + s.H * s.P, xbc.data() + s.H * s.P + s.G * s.N, stride,
                    dt.data(), A.data(), D.data()};

  std::vector<float> y_rec(static_cast<size_t>(T * s.H * s.P), NAN), y_chk(y_rec.size(), NAN);
  std::vector<float> st_rec = state0, st_chk = state0;
  std::vector<float> scratch(static_cast<size_t>(cpu::ssd_chunked_scratch_floats(Q, s)));
  cpu::ssd_recurrent_forward(y_rec.data(), in, st_rec.data(), T, s);
  cpu::ssd_chunked_forward(y_chk.data(), in, st_chk.data(), T, Q, s, scratch.data());
  for (float v : y_chk) ASSERT_TRUE(std::isfinite(v)) << "an output was not written";
  EXPECT_LE(test::rel_error(y_chk, y_rec), 2e-5) << c.name << " T=" << T;
  EXPECT_LE(test::rel_error(st_chk, st_rec), 2e-5) << c.name << " T=" << T;
}

const SsdCase kCases[] = {
    {"tiny (G=2)", {8, 16, 2, 16}, 8},
    {"mamba2-130m head shape, fewer heads", {4, 64, 1, 128}, 32},
    {"codestral-7b groups (H/G=2)", {16, 64, 8, 128}, 16},
};

INSTANTIATE_TEST_SUITE_P(Shapes, SsdChunkedVsRecurrent,
                         ::testing::Combine(::testing::ValuesIn(kCases), ::testing::Range<int64_t>(0, 5)));

}  // namespace
}  // namespace pcm
