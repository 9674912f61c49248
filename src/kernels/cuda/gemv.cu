// Decode projections for a few rows: Y[r, :] = W · X[r, :] (+ beta · Y) with bf16 W and X, fp32 accumulation.
// One warp per output feature streams its weight row once with 16-byte loads (8 bf16 per lane, four in
// flight), for every row of X at once: the weights are read exactly once per step, which is what bounds
// decode at small batch.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/ops.h"

namespace pcm::cuda {
namespace {

constexpr int kWarps = 8;

template <int R>
__global__ void __launch_bounds__(kWarps * 32) gemv_kernel(float* Y, const uint4* X, const uint4* W, int64_t n,
                                                            int64_t k8, float beta) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (row >= n) return;
  const uint4* w = W + row * k8;
  float acc[R];
#pragma unroll
  for (int r = 0; r < R; ++r) acc[r] = 0.0f;
  int64_t i = lane;
  for (; i + 96 < k8; i += 128) {  // four 16-byte weight loads in flight per lane
    uint4 wv[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) wv[u] = __ldcs(w + i + 32 * u);  // streamed once: do not keep in cache
#pragma unroll
    for (int u = 0; u < 4; ++u)
#pragma unroll
      for (int r = 0; r < R; ++r) acc[r] += dot8(wv[u], __ldg(X + r * k8 + i + 32 * u));
  }
  for (; i < k8; i += 32) {
    const uint4 wv = __ldcs(w + i);
#pragma unroll
    for (int r = 0; r < R; ++r) acc[r] += dot8(wv, __ldg(X + r * k8 + i));
  }
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const float v = warp_sum(acc[r]);
    if (lane == 0) {
      float* y = Y + r * n + row;
      *y = beta != 0.0f ? v + beta * *y : v;
    }
  }
}

}  // namespace

bool gemv_bf16_supported(int64_t T, int64_t k) { return T >= 1 && T <= kGemvMaxRows && k % 8 == 0; }

void gemv_bf16(float* Y, const void* X, const void* W, int64_t T, int64_t n, int64_t k, float beta, cudaStream_t s) {
  PCM_CHECK(gemv_bf16_supported(T, k), "gemv: {} rows x {} columns not supported", T, k);
  const auto* x = static_cast<const uint4*>(X);
  const auto* w = static_cast<const uint4*>(W);
  const unsigned grid = static_cast<unsigned>((n + kWarps - 1) / kWarps);
  const int64_t k8 = k / 8;
  switch (T) {
    case 1: gemv_kernel<1><<<grid, kWarps * 32, 0, s>>>(Y, x, w, n, k8, beta); break;
    case 2: gemv_kernel<2><<<grid, kWarps * 32, 0, s>>>(Y, x, w, n, k8, beta); break;
    case 3: gemv_kernel<3><<<grid, kWarps * 32, 0, s>>>(Y, x, w, n, k8, beta); break;
    default: gemv_kernel<4><<<grid, kWarps * 32, 0, s>>>(Y, x, w, n, k8, beta); break;
  }
  PCM_CUDA_LAUNCH();
}

}  // namespace pcm::cuda
