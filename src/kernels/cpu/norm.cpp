#include "kernels/cpu/norm.h"

#include <cmath>

#include "kernels/cpu/activations.h"

namespace pcm::cpu {

void rmsnorm_forward(float* out, const float* in, const float* weight, int64_t T, int64_t C, float eps) {
#pragma omp parallel for schedule(static) if (T > 1)
  for (int64_t t = 0; t < T; ++t) {
    const float* x = in + t * C;
    float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (int64_t c = 0; c < C; ++c) ss += x[c] * x[c];
    float inv = 1.0f / std::sqrt(ss / static_cast<float>(C) + eps);
    float* o = out + t * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) o[c] = x[c] * inv * weight[c];
  }
}

void gated_rmsnorm_forward(float* out, const float* y, const float* z, int64_t z_stride, const float* weight,
                           int64_t T, int64_t C, int64_t group_size, float eps) {
  const int64_t groups = C / group_size;
#pragma omp parallel for collapse(2) schedule(static) if (T * groups > 1)
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t c0 = g * group_size;
      const float* yr = y + t * C + c0;
      const float* zr = z + t * z_stride + c0;
      float* o = out + t * C + c0;
      float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
      for (int64_t c = 0; c < group_size; ++c) {
        float v = yr[c] * silu_vec(zr[c]);
        o[c] = v;
        ss += v * v;
      }
      float inv = 1.0f / std::sqrt(ss / static_cast<float>(group_size) + eps);
      const float* w = weight + c0;
#pragma omp simd
      for (int64_t c = 0; c < group_size; ++c) o[c] = o[c] * inv * w[c];
    }
  }
}

}  // namespace pcm::cpu
