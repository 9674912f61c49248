// The last reductions of both CUDA SSD backwards (ssd_backward.cu, ssd_chunked_backward.cu), in a fixed
// order: per-head B/C gradients summed over each group's heads, and per-piece dA/dD partials over pieces.
#pragma once
#include <cstdint>

namespace pcm::cuda {
namespace {

// dB / dC of group g = sum over its heads, written into the B and C columns.
__global__ void group_sum_kernel(float* dxbc, int64_t stride, const float* dBp, const float* dCp, int64_t T, int H,
                                 int G, int P, int N) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= T * G * N) return;
  const int64_t t = i / (G * N);
  const int gi = static_cast<int>((i / N) % G), n = static_cast<int>(i % N), hpg = H / G;
  float sb = 0.0f, scc = 0.0f;
  for (int k = 0; k < hpg; ++k) {
    const int64_t j = (t * H + gi * hpg + k) * N + n;
    sb += dBp[j];
    scc += dCp[j];
  }
  float* row = dxbc + t * stride + static_cast<int64_t>(H) * P;
  row[gi * N + n] = sb;
  row[static_cast<int64_t>(G) * N + gi * N + n] = scc;
}

// dA[h] = sum over pieces i of dAp[i * H + h]; dD[h] += the same over dDp.
__global__ void head_sum_kernel(float* dA, float* dD, const float* dAp, const float* dDp, int docs, int H) {
  const int h = blockIdx.x * blockDim.x + threadIdx.x;
  if (h >= H) return;
  float a = 0.0f, d = 0.0f;
  for (int i = 0; i < docs; ++i) {
    a += dAp[i * H + h];
    d += dDp[i * H + h];
  }
  dA[h] = a;
  dD[h] += d;
}

}  // namespace
}  // namespace pcm::cuda
