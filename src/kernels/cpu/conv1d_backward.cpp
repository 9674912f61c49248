#include "kernels/cpu/conv1d_backward.h"

#include <cmath>
#include <vector>

namespace pcm::cpu {

void conv1d_silu_backward(float* din, int64_t din_stride, float* dweight, float* dbias, float* dwindow,
                          const float* dout, const float* in, int64_t in_stride, const float* window,
                          const float* weight, const float* bias, int64_t T, int64_t C, int64_t K) {
  if (T <= 0) return;
#pragma omp parallel for schedule(static) if (T * C > 4096)
  for (int64_t c = 0; c < C; ++c) {
    // u[j] = input at position j - (K - 1): the K - 1 window inputs, then the T new ones.
    static thread_local std::vector<float> buf;
    buf.resize(static_cast<size_t>(2 * T + K));
    float* u = buf.data();
    float* dpre = u + T + K;
    for (int64_t k = 0; k + 1 < K; ++k) u[k] = window ? window[c * K + k + 1] : 0.0f;
    for (int64_t t = 0; t < T; ++t) u[K - 1 + t] = in[t * in_stride + c];
    const float* w = weight + c * K;
    const float b = bias ? bias[c] : 0.0f;
    float db = 0.0f;
    for (int64_t t = 0; t < T; ++t) {
      float pre = b;
      for (int64_t k = 0; k < K; ++k) pre += w[k] * u[t + k];
      const float s = 1.0f / (1.0f + std::exp(-pre));
      dpre[t] = dout[t * C + c] * s * (1.0f + pre * (1.0f - s));
      db += dpre[t];
    }
    if (dbias) dbias[c] += db;
    float* dw = dweight + c * K;
    for (int64_t k = 0; k < K; ++k) {
      float acc = 0.0f;
      for (int64_t t = 0; t < T; ++t) acc += dpre[t] * u[t + k];
      dw[k] += acc;
    }
    // d u[j] = sum_k w[k] dpre[j - k]
    for (int64_t t = 0; t < T; ++t) {
      const int64_t j = K - 1 + t;
      float acc = 0.0f;
      for (int64_t k = 0; k < K; ++k) {
        const int64_t tt = j - k;
        if (tt < T) acc += w[k] * dpre[tt];
      }
      din[t * din_stride + c] = acc;
    }
    if (dwindow) {
      for (int64_t k = 0; k + 1 < K; ++k) {  // window[k + 1] is u[k]
        float acc = 0.0f;
        for (int64_t kk = 0; kk < K; ++kk) {
          const int64_t tt = k - kk;
          if (tt >= 0 && tt < T) acc += w[kk] * dpre[tt];
        }
        dwindow[c * K + k + 1] += acc;
      }
    }
  }
}

}  // namespace pcm::cpu
