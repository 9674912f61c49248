// A pure streaming read (16-byte loads, evict-first, several in flight per thread, grid-stride): the
// read-bandwidth ceiling that the decode GEMVs are compared against (bench/cuda_decode_kernels.cpp).
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/ops.h"

namespace pcm::cuda {
namespace {

constexpr int kUnroll = 8;

__global__ void __launch_bounds__(256) stream_read_kernel(float* sink, const uint4* p, int64_t n16) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  uint32_t acc = 0;
  for (int64_t i0 = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i0 < n16; i0 += stride * kUnroll) {
    uint4 v[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t i = i0 + u * stride;
      v[u] = i < n16 ? __ldcs(p + i) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
  }
  if (acc == 0x9e3779b9u) *sink = 1.0f;  // keeps the loads; practically never taken
}

}  // namespace

void stream_read(float* sink, const void* p, int64_t bytes, cudaStream_t s) {
  const int sms = device_attribute(cudaDevAttrMultiProcessorCount);
  stream_read_kernel<<<sms * 8, 256, 0, s>>>(sink, static_cast<const uint4*>(p), bytes / 16);
  PCM_CUDA_LAUNCH();
}

}  // namespace pcm::cuda
