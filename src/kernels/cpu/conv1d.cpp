#include "kernels/cpu/conv1d.h"

#include <vector>

#include "kernels/cpu/activations.h"

namespace pcm::cpu {

void conv1d_silu_forward(float* out, const float* in, int64_t in_stride, float* window, const float* weight,
                         const float* bias, int64_t T, int64_t C, int64_t K) {
  if (T <= 0) return;
  constexpr int64_t kMaxK = 16;
#pragma omp parallel for schedule(static) if (T * C > 4096)
  for (int64_t c = 0; c < C; ++c) {
    const float* w = weight + c * K;
    float* win = window + c * K;
    // hist holds the K - 1 inputs before the current one, then the current one.
    float hist[kMaxK];
    for (int64_t k = 0; k < K; ++k) hist[k] = win[k];
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t k = 0; k + 1 < K; ++k) hist[k] = hist[k + 1];
      hist[K - 1] = in[t * in_stride + c];
      float acc = bias[c];
      for (int64_t k = 0; k < K; ++k) acc += w[k] * hist[k];
      out[t * C + c] = silu(acc);
    }
    for (int64_t k = 0; k < K; ++k) win[k] = hist[k];
  }
}

}  // namespace pcm::cpu
