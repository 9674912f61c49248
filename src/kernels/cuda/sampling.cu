// Sampling on the device, one block per sequence: greedy (first maximum), or temperature, top-k, top-p,
// min-p and a draw from a counter-based random stream (seed, step), so a CUDA graph replays it with new
// parameters and every sequence's draws are reproducible.
// Top-k and top-p thresholds are found by bisection over the order-preserving integer keys of the
// scaled logits (32 passes over the row, from L2) instead of a sort; ties at a threshold are all kept.
#include <cfloat>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/ops.h"

namespace pcm::cuda {
namespace {

constexpr int kThreads = 1024;

__device__ __forceinline__ uint32_t order_key(float v) {
  const uint32_t u = __float_as_uint(v);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__device__ float block_sum_f(float v) {
  __shared__ float red[32];
  return block_sum(v, red);
}

__device__ int block_sum_i(int v) {
  __shared__ int red[32];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
  __syncthreads();
  int r = (threadIdx.x & 31) < (blockDim.x >> 5) ? red[threadIdx.x & 31] : 0;
  for (int o = 16; o > 0; o >>= 1) r += __shfl_xor_sync(0xffffffffu, r, o);
  return r;
}

// Largest value, first index among equals (torch.argmax).
__device__ void block_argmax(float& v, int& idx) {
  __shared__ float sv[32];
  __shared__ int si[32];
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, o);
    const int oi = __shfl_xor_sync(0xffffffffu, idx, o);
    if (ov > v || (ov == v && oi < idx)) v = ov, idx = oi;
  }
  __syncthreads();
  if ((threadIdx.x & 31) == 0) sv[threadIdx.x >> 5] = v, si[threadIdx.x >> 5] = idx;
  __syncthreads();
  const int lane = threadIdx.x & 31;
  v = lane < (blockDim.x >> 5) ? sv[lane] : -FLT_MAX;
  idx = lane < (blockDim.x >> 5) ? si[lane] : 0x7fffffff;
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, o);
    const int oi = __shfl_xor_sync(0xffffffffu, idx, o);
    if (ov > v || (ov == v && oi < idx)) v = ov, idx = oi;
  }
}

__device__ __forceinline__ double uniform01(uint64_t seed, uint64_t step) {
  uint64_t z = seed ^ (0x9E3779B97F4A7C15ull * (step + 1));
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * (1.0 / 9007199254740992.0);
}

__global__ void __launch_bounds__(kThreads) sample_kernel(int32_t* ids, const float* logits, int64_t V,
                                                          const DeviceSampling* params) {
  const int b = blockIdx.x, tid = threadIdx.x;
  const float* l = logits + b * V;
  const DeviceSampling P = params[b];
  float best = -FLT_MAX;
  int bi = 0x7fffffff;
  for (int i = tid; i < V; i += kThreads)
    if (l[i] > best || bi == 0x7fffffff) best = l[i], bi = i;
  block_argmax(best, bi);
  if (P.temperature <= 0.0f) {
    if (tid == 0) ids[b] = bi;
    return;
  }
  // Scaled logits (l - best) / T, at most 0 (the maximum's): l * (1 / T) overflowed to inf / NaN for T under
  // ~3e-39 and the draw went to the highest ids; divided, a tiny T is greedy.
  auto scaled = [&](int i) { return (l[i] - best) / P.temperature; };
  uint32_t thr = 0;  // keep keys >= thr
  if (P.top_k > 0 && P.top_k < V) {
    uint32_t lo = 0, hi = 0xffffffffu;
    while (lo < hi) {
      const uint32_t mid = lo + (hi - lo) / 2 + 1;
      int cnt = 0;
      for (int i = tid; i < V; i += kThreads) cnt += order_key(scaled(i)) >= mid;
      if (block_sum_i(cnt) >= P.top_k) lo = mid;
      else hi = mid - 1;
    }
    thr = lo;
  }
  float z = 0.0f;
  for (int i = tid; i < V; i += kThreads) {
    const float s = scaled(i);
    if (order_key(s) >= thr) z += __expf(s);
  }
  z = block_sum_f(z);
  if (P.top_p < 1.0f) {  // largest threshold whose kept mass still reaches top_p
    uint32_t lo = thr, hi = 0xffffffffu;
    const float target = P.top_p * z;
    while (lo < hi) {
      const uint32_t mid = lo + (hi - lo) / 2 + 1;
      float mass = 0.0f;
      for (int i = tid; i < V; i += kThreads) {
        const float s = scaled(i);
        if (order_key(s) >= mid) mass += __expf(s);
      }
      if (block_sum_f(mass) >= target) lo = mid;
      else hi = mid - 1;
    }
    thr = lo;
  }
  const float floor_p = P.min_p;  // relative to the most likely token, whose exp(s) is 1
  auto kept = [&](int i, float& p) {
    const float s = scaled(i);
    p = __expf(s);
    return order_key(s) >= thr && p >= floor_p;
  };
  // Contiguous ranges per thread, so the draw walks the vocabulary in order.
  const int per = static_cast<int>((V + kThreads - 1) / kThreads);
  const int begin = static_cast<int>(min(V, static_cast<int64_t>(tid) * per));
  const int end = static_cast<int>(min(V, static_cast<int64_t>(begin) + per));
  float local = 0.0f;
  int last_kept = -1;
  for (int i = begin; i < end; ++i) {
    float p;
    if (kept(i, p)) local += p, last_kept = i;
  }
  // Exclusive prefix of `local` over the block.
  __shared__ float warp_tot[32];
  __shared__ int result;
  float incl = local;
  const int lane = tid & 31, warp = tid >> 5;
  for (int o = 1; o < 32; o <<= 1) {
    const float n = __shfl_up_sync(0xffffffffu, incl, o);
    if (lane >= o) incl += n;
  }
  if (tid == 0) result = -1;
  if (lane == 31) warp_tot[warp] = incl;
  __syncthreads();
  float base = 0.0f, mass = 0.0f;
  for (int w = 0; w < kThreads / 32; ++w) {
    if (w < warp) base += warp_tot[w];
    mass += warp_tot[w];
  }
  const float prefix = base + incl - local;
  const float u = static_cast<float>(uniform01(P.seed, P.step)) * mass;
  if (local > 0.0f && u >= prefix && u < prefix + local) {
    float run = prefix;
    int pick = last_kept;
    for (int i = begin; i < end; ++i) {
      float p;
      if (kept(i, p)) {
        run += p;
        if (u < run) {
          pick = i;
          break;
        }
      }
    }
    result = pick;
  }
  __syncthreads();
  if (result < 0) {  // u fell past the total by rounding: the last kept token
    float dummy = static_cast<float>(last_kept);
    int idx = -last_kept;  // block_argmax prefers larger values; use the index as the value
    block_argmax(dummy, idx);
    if (tid == 0) ids[b] = static_cast<int32_t>(dummy);
    return;
  }
  if (tid == 0) ids[b] = result;
}

}  // namespace

void sample(int32_t* ids, const float* logits, int64_t V, const DeviceSampling* params, int64_t Bn, cudaStream_t s) {
  if (Bn == 0) return;
  sample_kernel<<<static_cast<unsigned>(Bn), kThreads, 0, s>>>(ids, logits, V, params);
  PCM_CUDA_LAUNCH();
}

}  // namespace pcm::cuda
