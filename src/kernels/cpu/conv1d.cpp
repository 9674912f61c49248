#include "kernels/cpu/conv1d.h"

#include <algorithm>
#include <vector>

#include "kernels/cpu/activations.h"

namespace pcm::cpu {

void conv1d_silu_forward(float* out, const float* in, int64_t in_stride, float* window, const float* weight,
                         const float* bias, int64_t T, int64_t C, int64_t K) {
  if (T <= 0) return;
  constexpr int64_t kMaxK = 16;
  if (T < 4 && K <= kMaxK) {  // decode: a rolling window per channel, no setup
#pragma omp parallel for schedule(static) if (C >= 2048)
    for (int64_t c0 = 0; c0 < C; c0 += 256) {
      const int64_t c1 = std::min(C, c0 + 256);
      for (int64_t t = 0; t < T; ++t) {
        for (int64_t c = c0; c < c1; ++c) {
          const float* w = weight + c * K;
          float* win = window + c * K;
          for (int64_t k = 0; k + 1 < K; ++k) win[k] = win[k + 1];
          win[K - 1] = in[t * in_stride + c];
          float acc = bias[c];
          for (int64_t k = 0; k < K; ++k) acc += w[k] * win[k];
          out[t * C + c] = acc;
        }
        float* o = out + t * C;
#pragma omp simd
        for (int64_t c = c0; c < c1; ++c) o[c] = silu_vec(o[c]);
      }
    }
    return;
  }
  // Taps as [K, C] so the inner loops run along channels: rows of `in` are read contiguously and the
  // loops vectorise (walking each channel down T strided rows cost more than the projections).
  static thread_local std::vector<float> taps;
  taps.resize(static_cast<size_t>(K * C));
  for (int64_t c = 0; c < C; ++c)
    for (int64_t k = 0; k < K; ++k) taps[static_cast<size_t>(k * C + c)] = weight[c * K + k];
  const float* wt = taps.data();
  constexpr int64_t kBlock = 64;
#pragma omp parallel for schedule(static) if (T * C > 4096)
  for (int64_t c0 = 0; c0 < C; c0 += kBlock) {
    const int64_t n = std::min(kBlock, C - c0);
    float acc[kBlock];
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t c = 0; c < n; ++c) acc[c] = bias[c0 + c];
      for (int64_t k = 0; k < K; ++k) {
        const int64_t p = t - (K - 1) + k;  // input position feeding tap k
        const float* w = wt + k * C + c0;
        if (p >= 0) {
          const float* x = in + p * in_stride + c0;
#pragma omp simd
          for (int64_t c = 0; c < n; ++c) acc[c] += w[c] * x[c];
        } else {  // before this call: from the window, which holds the last K inputs
          for (int64_t c = 0; c < n; ++c) acc[c] += w[c] * window[(c0 + c) * K + K + p];
        }
      }
      float* o = out + t * C + c0;
#pragma omp simd
      for (int64_t c = 0; c < n; ++c) o[c] = silu_vec(acc[c]);
    }
    // The window becomes the last K inputs: positions T-K .. T-1, older ones from the old window
    // (slot j reads old slot T + j > j, so ascending j never reads a slot it already wrote).
    for (int64_t c = c0; c < c0 + n; ++c) {
      float* win = window + c * K;
      for (int64_t j = 0; j < K; ++j) {
        const int64_t p = T - K + j;
        win[j] = p >= 0 ? in[p * in_stride + c] : win[T + j];
      }
    }
  }
}

}  // namespace pcm::cpu
