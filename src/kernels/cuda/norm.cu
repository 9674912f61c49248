// Row-wise kernels of the forward pass: embedding gather, RMSNorm, grouped gated RMSNorm, bias, dt.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/ops.h"

namespace pcm::cuda {
namespace {

template <class W>
__global__ void embedding_kernel(float* resid, const W* emb, const int32_t* tokens, int64_t d) {
  const int64_t t = blockIdx.y;
  const W* row = emb + static_cast<int64_t>(tokens[t]) * d;
  for (int64_t i = blockIdx.x * blockDim.x + threadIdx.x; i < d; i += gridDim.x * blockDim.x)
    resid[t * d + i] = to_float(row[i]);
}

// One block per row. The row is read once into registers (kVpt values per thread, strided so the loads
// are coalesced), which keeps the single-row decode case at one round trip to memory.
constexpr int kNormThreads = 256, kVpt = 16;

template <class O>
__global__ void __launch_bounds__(kNormThreads) rmsnorm_kernel(O* out, const float* in, const float* weight,
                                                               int64_t C, float eps) {
  __shared__ float red[32];
  const int64_t t = blockIdx.x;
  const float* x = in + t * C;
  float v[kVpt];
  float ss = 0.0f;
#pragma unroll
  for (int u = 0; u < kVpt; ++u) {
    const int64_t i = threadIdx.x + static_cast<int64_t>(u) * kNormThreads;
    v[u] = i < C ? x[i] : 0.0f;
    ss += v[u] * v[u];
  }
  ss = block_sum(ss, red);
  const float r = rsqrtf(ss / static_cast<float>(C) + eps);
#pragma unroll
  for (int u = 0; u < kVpt; ++u) {
    const int64_t i = threadIdx.x + static_cast<int64_t>(u) * kNormThreads;
    if (i < C) out[t * C + i] = from_float<O>(v[u] * r * weight[i]);
  }
}

// One block per (row, group); g = y * silu(z) kept in registers between the two steps.
template <class O>
__global__ void __launch_bounds__(kNormThreads) gated_rmsnorm_kernel(O* out, const float* y, const float* z,
                                                                     int64_t z_stride, const float* weight, int64_t C,
                                                                     int64_t gs, float eps) {
  __shared__ float red[32];
  const int64_t t = blockIdx.x, g0 = blockIdx.y * gs;
  float v[kVpt];
  float ss = 0.0f;
#pragma unroll
  for (int u = 0; u < kVpt; ++u) {
    const int64_t i = threadIdx.x + static_cast<int64_t>(u) * kNormThreads;
    v[u] = i < gs ? y[t * C + g0 + i] * silu_f(z[t * z_stride + g0 + i]) : 0.0f;
    ss += v[u] * v[u];
  }
  ss = block_sum(ss, red);
  const float r = rsqrtf(ss / static_cast<float>(gs) + eps);
#pragma unroll
  for (int u = 0; u < kVpt; ++u) {
    const int64_t i = threadIdx.x + static_cast<int64_t>(u) * kNormThreads;
    if (i < gs) out[t * C + g0 + i] = from_float<O>(v[u] * r * weight[g0 + i]);
  }
}

__global__ void add_bias_kernel(float* x, int64_t stride, const float* bias, int64_t T, int64_t C) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < T * C) x[(i / C) * stride + i % C] += bias[i % C];
}

__global__ void dt_kernel(float* dt, const float* raw, int64_t stride, const float* dt_bias, int64_t T, int64_t H,
                          float lo, float hi) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= T * H) return;
  const int64_t t = i / H, h = i % H;
  const float v = raw[t * stride + h] + dt_bias[h];
  const float sp = v > 20.0f ? v : log1pf(expf(v));  // torch softplus, threshold 20
  dt[i] = fminf(fmaxf(sp, lo), hi);
}

__global__ void f32_to_bf16_kernel(__nv_bfloat16* out, const float* in, int64_t n) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) out[i] = __float2bfloat16(in[i]);
}
__global__ void bf16_to_f32_kernel(float* out, const __nv_bfloat16* in, int64_t n) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) out[i] = __bfloat162float(in[i]);
}

// Counter-based (splitmix64) uniform draws with the std of N(0, stddev): reproducible, any launch shape.
__global__ void fill_uniform_kernel(__nv_bfloat16* out, int64_t n, float stddev, uint64_t seed) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(i + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const float u = static_cast<float>(z >> 40) * (1.0f / 16777216.0f);  // [0, 1)
    out[i] = __float2bfloat16((2.0f * u - 1.0f) * stddev * 1.7320508f);
  }
}

}  // namespace

void embedding_gather(float* resid, const void* embedding, bool bf16, const int32_t* tokens, int64_t T, int64_t d,
                      cudaStream_t s) {
  if (T == 0) return;
  dim3 grid(blocks_for(d, 256), static_cast<unsigned>(T));
  if (bf16)
    embedding_kernel<<<grid, 256, 0, s>>>(resid, static_cast<const __nv_bfloat16*>(embedding), tokens, d);
  else
    embedding_kernel<<<grid, 256, 0, s>>>(resid, static_cast<const float*>(embedding), tokens, d);
  PCM_CUDA_LAUNCH();
}

void rmsnorm(void* out, bool bf16, const float* in, const float* weight, int64_t T, int64_t C, float eps,
             cudaStream_t s) {
  if (T == 0) return;
  PCM_CHECK(C <= kNormThreads * kVpt, "CUDA RMSNorm: {} channels exceed {}", C, kNormThreads * kVpt);
  if (bf16)
    rmsnorm_kernel<<<static_cast<unsigned>(T), kNormThreads, 0, s>>>(static_cast<__nv_bfloat16*>(out), in, weight, C,
                                                                     eps);
  else
    rmsnorm_kernel<<<static_cast<unsigned>(T), kNormThreads, 0, s>>>(static_cast<float*>(out), in, weight, C, eps);
  PCM_CUDA_LAUNCH();
}

void gated_rmsnorm(void* out, bool bf16, const float* y, const float* z, int64_t z_stride, const float* weight,
                   int64_t T, int64_t C, int64_t group_size, float eps, cudaStream_t s) {
  if (T == 0) return;
  PCM_CHECK(group_size <= kNormThreads * kVpt, "CUDA gated RMSNorm: group of {} channels exceeds {}", group_size,
            kNormThreads * kVpt);
  dim3 grid(static_cast<unsigned>(T), static_cast<unsigned>(C / group_size));
  if (bf16)
    gated_rmsnorm_kernel<<<grid, kNormThreads, 0, s>>>(static_cast<__nv_bfloat16*>(out), y, z, z_stride, weight, C,
                                              group_size, eps);
  else
    gated_rmsnorm_kernel<<<grid, kNormThreads, 0, s>>>(static_cast<float*>(out), y, z, z_stride, weight, C,
                                                       group_size, eps);
  PCM_CUDA_LAUNCH();
}

void add_bias(float* x, int64_t stride, const float* bias, int64_t T, int64_t C, cudaStream_t s) {
  if (T * C == 0) return;
  add_bias_kernel<<<blocks_for(T * C, 256), 256, 0, s>>>(x, stride, bias, T, C);
  PCM_CUDA_LAUNCH();
}

void dt_softplus(float* dt, const float* raw, int64_t stride, const float* dt_bias, int64_t T, int64_t H, float lo,
                 float hi, cudaStream_t s) {
  if (T * H == 0) return;
  dt_kernel<<<blocks_for(T * H, 256), 256, 0, s>>>(dt, raw, stride, dt_bias, T, H, lo, hi);
  PCM_CUDA_LAUNCH();
}

void f32_to_bf16(uint16_t* out, const float* in, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  f32_to_bf16_kernel<<<blocks_for(n, 256), 256, 0, s>>>(reinterpret_cast<__nv_bfloat16*>(out), in, n);
  PCM_CUDA_LAUNCH();
}
void bf16_to_f32(float* out, const uint16_t* in, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  bf16_to_f32_kernel<<<blocks_for(n, 256), 256, 0, s>>>(out, reinterpret_cast<const __nv_bfloat16*>(in), n);
  PCM_CUDA_LAUNCH();
}
void fill_uniform_bf16(uint16_t* out, int64_t n, float stddev, uint64_t seed, cudaStream_t s) {
  if (n == 0) return;
  fill_uniform_kernel<<<4096, 256, 0, s>>>(reinterpret_cast<__nv_bfloat16*>(out), n, stddev, seed);
  PCM_CUDA_LAUNCH();
}

}  // namespace pcm::cuda
