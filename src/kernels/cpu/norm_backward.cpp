#include "kernels/cpu/norm_backward.h"

#include <cmath>
#include <vector>

#include "kernels/cpu/activations.h"

namespace pcm::cpu {

namespace {
// d silu(z) / dz = s (1 + z (1 - s)), s = sigmoid(z)
inline float dsilu(float z) {
  const float s = 1.0f / (1.0f + std::exp(-z));
  return s * (1.0f + z * (1.0f - s));
}
}  // namespace

void rmsnorm_backward(float* dx, float* dweight, const float* dout, const float* x, const float* weight, int64_t T,
                      int64_t C, float eps, bool accumulate) {
  static thread_local std::vector<float> rs;  // r per row, reused by the dweight pass
  rs.resize(static_cast<size_t>(T));
  float* r = rs.data();
  // Rows in parallel for dx; then channels in parallel for dweight (no write races, no atomics).
#pragma omp parallel for schedule(static) if (T > 1)
  for (int64_t t = 0; t < T; ++t) {
    const float* xr = x + t * C;
    const float* dr = dout + t * C;
    float ss = 0.0f, dot = 0.0f;
#pragma omp simd reduction(+ : ss, dot)
    for (int64_t c = 0; c < C; ++c) {
      ss += xr[c] * xr[c];
      dot += dr[c] * weight[c] * xr[c];
    }
    const float inv = 1.0f / std::sqrt(ss / static_cast<float>(C) + eps);
    r[t] = inv;
    const float k = dot * inv * inv * inv / static_cast<float>(C);
    float* o = dx + t * C;
    if (accumulate) {
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) o[c] += inv * dr[c] * weight[c] - k * xr[c];
    } else {
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) o[c] = inv * dr[c] * weight[c] - k * xr[c];
    }
  }
  if (!dweight) return;
#pragma omp parallel for schedule(static) if (C * T > 4096)
  for (int64_t c = 0; c < C; ++c) {
    float acc = 0.0f;
    for (int64_t t = 0; t < T; ++t) acc += dout[t * C + c] * x[t * C + c] * r[t];
    dweight[c] += acc;
  }
}

void gated_rmsnorm_backward(float* dy, float* dz, int64_t dz_stride, float* dweight, const float* dout,
                            const float* y, const float* z, int64_t z_stride, const float* weight, int64_t T,
                            int64_t C, int64_t group_size, float eps) {
  const int64_t groups = C / group_size;
  static thread_local std::vector<float> rs;  // r per (row, group)
  rs.resize(static_cast<size_t>(T * groups));
  float* r = rs.data();
#pragma omp parallel for collapse(2) schedule(static) if (T * groups > 1)
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t c0 = g * group_size;
      const float* yr = y + t * C + c0;
      const float* zr = z + t * z_stride + c0;
      const float* dr = dout + t * C + c0;
      const float* w = weight + c0;
      float ss = 0.0f, dot = 0.0f;
      for (int64_t c = 0; c < group_size; ++c) {
        const float gv = yr[c] * silu(zr[c]);
        ss += gv * gv;
        dot += dr[c] * w[c] * gv;
      }
      const float inv = 1.0f / std::sqrt(ss / static_cast<float>(group_size) + eps);
      r[t * groups + g] = inv;
      const float k = dot * inv * inv * inv / static_cast<float>(group_size);
      float* dyr = dy + t * C + c0;
      float* dzr = dz + t * dz_stride + c0;
      for (int64_t c = 0; c < group_size; ++c) {
        const float sz = silu(zr[c]);
        const float dg = inv * dr[c] * w[c] - k * yr[c] * sz;
        dyr[c] = dg * sz;
        dzr[c] = dg * yr[c] * dsilu(zr[c]);
      }
    }
  }
  if (!dweight) return;
#pragma omp parallel for schedule(static) if (C * T > 4096)
  for (int64_t c = 0; c < C; ++c) {
    const int64_t g = c / group_size;
    float acc = 0.0f;
    for (int64_t t = 0; t < T; ++t) acc += dout[t * C + c] * y[t * C + c] * silu(z[t * z_stride + c]) * r[t * groups + g];
    dweight[c] += acc;
  }
}

}  // namespace pcm::cpu
