// Scalar activations, written as PyTorch computes them.
#pragma once
#include <cmath>
#include <cstdint>

namespace pcm::cpu {

inline float silu(float x) { return x / (1.0f + std::exp(-x)); }

// torch.nn.functional.softplus with threshold 20 (linear above it).
inline float softplus(float x) { return x > 20.0f ? x : std::log1p(std::exp(x)); }

}  // namespace pcm::cpu

namespace pcm::cpu {

// exp(x) for x <= 0 within ~2 ulp, written so compilers vectorise loops over it (the chunked SSD
// takes Q²/2 of these per head and chunk). Cody-Waite reduction, degree-6 polynomial.
inline float exp_nonpositive(float x) {
  x = x < -87.0f ? -87.0f : x;
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round(x / ln 2)
  const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187e-06f;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  __builtin_memcpy(&scale, &bits, 4);
  return p * scale;
}

}  // namespace pcm::cpu

namespace pcm::cpu {

// silu(x) = x · sigmoid(x) through exp_nonpositive(-|x|), so loops over it vectorise; agrees with
// silu() to a few ulp.
inline float silu_vec(float x) {
  const float e = exp_nonpositive(-std::fabs(x));
  const float inv = 1.0f / (1.0f + e);
  return x * (x >= 0.0f ? inv : e * inv);
}

}  // namespace pcm::cpu
