// Small device helpers shared by the .cu files: block reductions, activations, bf16 stores.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <utility>

namespace pcm::cuda {

// bf16 pairs in 32-bit words, the lower address (the smaller index) in the low half, rounded to nearest even.
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}
__device__ __forceinline__ uint2 pack_bf16x4(const float4& v) {
  return make_uint2(pack_bf16x2(v.x, v.y), pack_bf16x2(v.z, v.w));
}
__device__ __forceinline__ float bf16_lo(uint32_t w) { return __uint_as_float(w << 16); }
__device__ __forceinline__ float bf16_hi(uint32_t w) { return __uint_as_float(w & 0xffff0000u); }
__device__ __forceinline__ float4 unpack_bf16x4(uint32_t lo, uint32_t hi) {
  return make_float4(bf16_lo(lo), bf16_hi(lo), bf16_lo(hi), bf16_hi(hi));
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
__device__ __forceinline__ float block_sum(float v, float* smem32) {
  v = warp_sum(v);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  __syncthreads();  // smem32 may still be read by a previous call
  if (lane == 0) smem32[warp] = v;
  __syncthreads();
  float r = lane < warps ? smem32[lane] : 0.0f;
  return warp_sum(r);
}

// Sigmoid by ex2.approx and an approximate divide: the norm backwards are issue-bound with accurate expf.
// (1 + e^-z = inf for z < -88: the divide gives 0, as the exact one.)
__device__ __forceinline__ float sigmoid_fast(float z) { return __fdividef(1.0f, 1.0f + __expf(-z)); }

// SiLU with the same approximate divide (~2 ulp): the IEEE divide's ~8 instructions made the bf16 prefill's conv
// issue-bound (65% of SM throughput at 48% of HBM bandwidth, H200 2026-12-04).
__device__ __forceinline__ float silu_f(float x) { return x * sigmoid_fast(x); }

// dt's activation: torch softplus (threshold 20), clamped to [lo, hi].
__device__ __forceinline__ float softplus_clamp(float u, float lo, float hi) {
  const float sp = u > 20.0f ? u : log1pf(expf(u));
  return fminf(fmaxf(sp, lo), hi);
}

template <class T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16(v); }

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

// Host side of kernels templated on an input that is fp32 or bf16: f(p as const __nv_bfloat16* when bf16, else as
// const float*).
template <class F>
void with_input_type(const void* p, bool bf16, F&& f) {
  if (bf16)
    f(static_cast<const __nv_bfloat16*>(p));
  else
    f(static_cast<const float*>(p));
}

// Dot product of 8 bf16 pairs (two 16-byte vectors), fp32 accumulation.
__device__ __forceinline__ float dot8(const uint4& w, const uint4& x) {
  const __nv_bfloat162* wp = reinterpret_cast<const __nv_bfloat162*>(&w);
  const __nv_bfloat162* xp = reinterpret_cast<const __nv_bfloat162*>(&x);
  float acc = 0.0f;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 a = __bfloat1622float2(wp[i]), b = __bfloat1622float2(xp[i]);
    acc = fmaf(a.x, b.x, acc);
    acc = fmaf(a.y, b.y, acc);
  }
  return acc;
}

// Programmatic dependent launch (sm_90). A kernel launched with launch_pdl may start while the kernel
// before it in the stream is still running; it must call pdl_wait() before touching anything that kernel
// (or any kernel of this step) writes, and may only read constant data (weights, state of other layers'
// untouched slots) before it. pdl_trigger() after the wait lets the next kernel start its own preamble:
// calling it only after the wait keeps the early start to one kernel ahead.
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
// Pull one 128-byte line into L2 without waiting for it.
__device__ __forceinline__ void prefetch_l2(const void* p) { asm volatile("prefetch.global.L2 [%0];" ::"l"(p)); }

// `pdl` false: a plain launch of the same kernel (its pdl_wait returns at once, the kernel before it having ended).
template <class... KArgs, class... Args>
cudaError_t launch_pdl_if(bool pdl, void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t s,
                          Args&&... args) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = s;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = pdl && s ? 1 : 0;  // the legacy default stream (tests) gets a plain launch
  return cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...);
}
template <class... KArgs, class... Args>
cudaError_t launch_pdl(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t s,
                       Args&&... args) {
  return launch_pdl_if(true, kernel, grid, block, smem, s, std::forward<Args>(args)...);
}

// Whether p is a multiple of `bytes`: the vector paths' precondition (host before a launch, or a kernel choosing).
__host__ __device__ inline bool aligned(const void* p, uintptr_t bytes) {
  return reinterpret_cast<uintptr_t>(p) % bytes == 0;
}

inline unsigned blocks_for(int64_t n, int threads) { return static_cast<unsigned>((n + threads - 1) / threads); }

}  // namespace pcm::cuda
