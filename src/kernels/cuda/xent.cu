// Masked next-token cross-entropy over blocks of logits (a vocabulary chunk of all rows, or all of the
// vocabulary for a block of rows): online log-sum-exp per row (pass 1), then softmax - onehot (pass 2).
#include <algorithm>
#include <cfloat>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/train_ops.h"

namespace pcm::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void init_kernel(float* run_max, float* run_sum, float* tgt, int64_t n) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  run_max[i] = -FLT_MAX;
  run_sum[i] = 0.0f;
  tgt[i] = 0.0f;
}

// (max, sum of exp(x - max)) pairs merged: the online softmax's combine step.
__device__ __forceinline__ void merge_ms(float& m, float& s, float m2, float s2) {
  const float mn = fmaxf(m, m2);
  s = (m == -FLT_MAX ? 0.0f : s * expf(m - mn)) + (m2 == -FLT_MAX ? 0.0f : s2 * expf(m2 - mn));
  m = mn;
}

// One pass over the row chunk: each thread keeps a running (max, sum) over its elements (a rescale only
// when its max grows), then the block merges the pairs. The full-vocabulary rows of the CUDA head are
// 200 KB: a second pass would come from DRAM again.
__global__ void __launch_bounds__(kThreads) stats_kernel(float* run_max, float* run_sum, float* tgt,
                                                         const float* logits, int64_t ld, const int32_t* targets,
                                                         int64_t v0, int64_t vc) {
  __shared__ float2 red[32];
  const int64_t i = blockIdx.x;
  const float* l = logits + i * ld;
  float m = -FLT_MAX, sum = 0.0f;
  auto add = [&](float x) {
    if (x > m) {
      sum = (m == -FLT_MAX ? 0.0f : sum * expf(m - x)) + 1.0f;
      m = x;
    } else {
      sum += expf(x - m);
    }
  };
  const bool vec4 = ld % 4 == 0 && aligned(logits, 16);
  int64_t j0 = 0;
  if (vec4) {
    const int64_t n4 = vc / 4;
    for (int64_t q = threadIdx.x; q < n4; q += kThreads) {
      const float4 v = reinterpret_cast<const float4*>(l)[q];
      add(v.x);
      add(v.y);
      add(v.z);
      add(v.w);
    }
    j0 = 4 * n4;
  }
  for (int64_t j = j0 + threadIdx.x; j < vc; j += kThreads) add(l[j]);
  for (int o = 16; o > 0; o >>= 1) {
    const float m2 = __shfl_xor_sync(0xffffffffu, m, o), s2 = __shfl_xor_sync(0xffffffffu, sum, o);
    merge_ms(m, sum, m2, s2);
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) red[warp] = make_float2(m, sum);
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < kThreads / 32; ++w) merge_ms(m, sum, red[w].x, red[w].y);
    float m_run = run_max[i], s_run = run_sum[i];
    merge_ms(m_run, s_run, m, sum);
    run_sum[i] = s_run;
    run_max[i] = m_run;
    const int64_t tg = targets[i];
    if (tg >= v0 && tg < v0 + vc) tgt[i] = l[tg - v0];
  }
}

__global__ void finish_kernel(float* lse, float* loss, const float* run_max, const float* run_sum, const float* tgt,
                              int64_t n) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  lse[i] = run_max[i] + logf(run_sum[i]);
  loss[i] = lse[i] - tgt[i];
}

// One block row per logits row (no index division); out16 null: in place.
__device__ __forceinline__ float grad_of(float l, float lse, bool target) {
  return expf(l - lse) - (target ? 1.0f : 0.0f);
}
// kVec4: 4 consecutive logits per thread (16-byte load, 8-byte bf16 store), for rows that allow it.
template <bool kVec4>
__global__ void grad_kernel(float* logits, int64_t ld, __nv_bfloat16* out16, const float* lse,
                            const int32_t* targets, int64_t v0, int64_t vc) {
  const int64_t i = blockIdx.x;  // rows on x: no 65535 limit
  const float m = lse[i];
  const int64_t tg = targets[i] - v0;
  constexpr int kPer = kVec4 ? 4 : 1;
  for (int64_t j = kPer * (blockIdx.y * static_cast<int64_t>(blockDim.x) + threadIdx.x); j < vc;
       j += kPer * static_cast<int64_t>(gridDim.y) * blockDim.x) {
    float* l = logits + i * ld + j;
    if constexpr (kVec4) {
      float4 v = *reinterpret_cast<const float4*>(l);
      v.x = grad_of(v.x, m, j == tg);
      v.y = grad_of(v.y, m, j + 1 == tg);
      v.z = grad_of(v.z, m, j + 2 == tg);
      v.w = grad_of(v.w, m, j + 3 == tg);
      if (out16) {
        __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y), hi = __floats2bfloat162_rn(v.z, v.w);
        uint2 packed;
        packed.x = *reinterpret_cast<uint32_t*>(&lo);
        packed.y = *reinterpret_cast<uint32_t*>(&hi);
        *reinterpret_cast<uint2*>(out16 + i * vc + j) = packed;
      } else {
        *reinterpret_cast<float4*>(l) = v;
      }
    } else {
      const float g = grad_of(*l, m, j == tg);
      if (out16)
        out16[i * vc + j] = __float2bfloat16(g);
      else
        *l = g;
    }
  }
}

}  // namespace

void xent_init(float* run_max, float* run_sum, float* tgt_logit, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  init_kernel<<<blocks_for(n, 256), 256, 0, s>>>(run_max, run_sum, tgt_logit, n);
  PCM_CUDA_LAUNCH();
}

void xent_chunk_stats(float* run_max, float* run_sum, float* tgt_logit, const float* logits, int64_t ld,
                      const int32_t* targets, int64_t n, int64_t v0, int64_t vc, cudaStream_t s) {
  if (n == 0) return;
  stats_kernel<<<static_cast<unsigned>(n), kThreads, 0, s>>>(run_max, run_sum, tgt_logit, logits, ld, targets, v0, vc);
  PCM_CUDA_LAUNCH();
}

void xent_finish(float* lse, float* loss, const float* run_max, const float* run_sum, const float* tgt_logit,
                 int64_t n, cudaStream_t s) {
  if (n == 0) return;
  finish_kernel<<<blocks_for(n, 256), 256, 0, s>>>(lse, loss, run_max, run_sum, tgt_logit, n);
  PCM_CUDA_LAUNCH();
}

void xent_chunk_grad(float* logits, int64_t ld, const float* lse, const int32_t* targets, int64_t n, int64_t v0,
                     int64_t vc, cudaStream_t s, uint16_t* out_bf16) {
  if (n == 0 || vc == 0) return;
  auto* out16 = reinterpret_cast<__nv_bfloat16*>(out_bf16);
  const bool vec4 = vc % 4 == 0 && ld % 4 == 0 && aligned(logits, 16) && aligned(out_bf16, 8);
  if (vec4) {
    const dim3 grid(static_cast<unsigned>(n), std::min(blocks_for(vc / 4, 256), 8u));
    grad_kernel<true><<<grid, 256, 0, s>>>(logits, ld, out16, lse, targets, v0, vc);
  } else {
    const dim3 grid(static_cast<unsigned>(n), std::min(blocks_for(vc, 256), 8u));
    grad_kernel<false><<<grid, 256, 0, s>>>(logits, ld, out16, lse, targets, v0, vc);
  }
  PCM_CUDA_LAUNCH();
}

}  // namespace pcm::cuda
