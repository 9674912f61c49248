#include "kernels/cpu/dt_embedding.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/activations.h"

namespace pcm::cpu {

void dt_softplus_forward(float* dt, const float* raw, int64_t raw_stride, const float* dt_bias, int64_t T, int64_t H,
                         float dt_min, float dt_max) {
#pragma omp parallel for schedule(static) if (T * H > 16384)
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h)
      dt[t * H + h] = std::clamp(softplus(raw[t * raw_stride + h] + dt_bias[h]), dt_min, dt_max);
}

void dt_softplus_backward(float* draw, int64_t draw_stride, float* ddt_bias, const float* ddt, const float* raw,
                          int64_t raw_stride, const float* dt_bias, int64_t T, int64_t H, float dt_min, float dt_max) {
#pragma omp parallel for schedule(static) if (T * H > 16384)
  for (int64_t h = 0; h < H; ++h) {
    float acc = 0.0f;
    for (int64_t t = 0; t < T; ++t) {
      const float v = raw[t * raw_stride + h] + dt_bias[h];
      const float sp = softplus(v);
      float g = 0.0f;
      // d softplus / dv = sigmoid(v); linear (derivative 1) above torch's threshold of 20.
      if (sp >= dt_min && sp <= dt_max) g = ddt[t * H + h] * (v > 20.0f ? 1.0f : 1.0f / (1.0f + std::exp(-v)));
      draw[t * draw_stride + h] = g;
      acc += g;
    }
    ddt_bias[h] += acc;
  }
}

void embedding_forward(float* out, const float* table, const int32_t* ids, int64_t T, int64_t d) {
#pragma omp parallel for schedule(static) if (T > 1)
  for (int64_t t = 0; t < T; ++t) std::memcpy(out + t * d, table + static_cast<int64_t>(ids[t]) * d, sizeof(float) * d);
}

void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t T, int64_t d) {
  constexpr int64_t kBlock = 64;
#pragma omp parallel for schedule(static) if (T * d > 65536)
  for (int64_t c0 = 0; c0 < d; c0 += kBlock) {
    const int64_t c1 = std::min(d, c0 + kBlock);
    for (int64_t t = 0; t < T; ++t) {
      float* dst = dtable + static_cast<int64_t>(ids[t]) * d;
      const float* src = dout + t * d;
      for (int64_t c = c0; c < c1; ++c) dst[c] += src[c];
    }
  }
}

}  // namespace pcm::cpu
