// The row-wise work around a decode GEMV at a few rows, shared by the fused per-layer kernels (decode_fused.cu) and
// the whole-step persistent kernel (decode_persistent.cu): prologues build the bf16 input rows in shared memory from
// the layer's fp32 activations, epilogues take one finished dot product. kThreads: the threads that build a row and
// the partition of the RMSNorm's sum of squares (its order, so both kernels give the same bits); kBlockThreads: the
// block's, whose threads past kThreads only meet the barriers (equal: no test compiled in).
#pragma once
#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/cuda/conv_ring.cuh"
#include "kernels/cuda/decode_trace.cuh"
#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/ops.h"

namespace pcm::cuda {
namespace {

constexpr int kMaxGroups = 32;  // gated norm groups per row

// ---- prologues: fill xs[r][0..k) (bf16) for the R input rows, then __syncthreads ------------------------

// x = in[r] * rsqrt(mean(in[r]²) + eps) * weight, rounded to bf16 (as cuda::rmsnorm with bf16 output).
template <int kThreads, int kBlockThreads = kThreads>
struct NormPrologue {
  const float* in;  // [R, k]
  const float* weight;
  float eps;

  template <int R>
  __device__ void build(__nv_bfloat16* xs, int64_t k) const {
    constexpr int kWarps = kThreads / 32;
    __shared__ float red[R][kWarps];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int64_t k4 = k / 4;
    const bool part = kBlockThreads == kThreads || threadIdx.x < kThreads;  // the others only meet the barriers
    float ss[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
      if (!part) break;
      ss[r] = 0.0f;
      const float4* row = reinterpret_cast<const float4*>(in + r * k);
#pragma unroll 4
      for (int64_t i = threadIdx.x; i < k4; i += kThreads) {  // 4 loads in flight, not one
        const float4 v = row[i];
        ss[r] += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
      }
      ss[r] = warp_sum(ss[r]);
      if (lane == 0) red[r][warp] = ss[r];
    }
    __syncthreads();
#pragma unroll
    for (int r = 0; r < R; ++r) {
      if (!part) break;
      float t = 0.0f;
#pragma unroll
      for (int w = 0; w < kWarps; ++w) t += red[r][w];
      const float scale = rsqrtf(t / static_cast<float>(k) + eps);
      const float4* row = reinterpret_cast<const float4*>(in + r * k);
      const float4* wt = reinterpret_cast<const float4*>(weight);
      __nv_bfloat162* out = reinterpret_cast<__nv_bfloat162*>(xs + r * k);
#pragma unroll 4
      for (int64_t i = threadIdx.x; i < k4; i += kThreads) {
        const float4 v = row[i], g = wt[i];
        out[2 * i] = __floats2bfloat162_rn(v.x * scale * g.x, v.y * scale * g.y);
        out[2 * i + 1] = __floats2bfloat162_rn(v.z * scale * g.z, v.w * scale * g.w);
      }
    }
    __syncthreads();
  }
};

// The grouped gated RMSNorm from the SSD step's gated outputs (DecodeGate): g = y * silu(z) and each head's
// Σ g² are already there, so the block only sums a group's head partials and makes one pass g * scale *
// weight. Each block of the persistent grid builds the whole row: recomputing silu(z) and the squares
// over y and z in two passes here cost 7 µs of out_proj's 24 at one row (bench/cuda_notes.md, decode v9).
template <int kThreads, int kBlockThreads = kThreads>
struct ScalePrologue {
  const float* g;    // [R, k]
  const float* ssq;  // [R, heads]
  int64_t heads;     // heads / (k / group) consecutive heads form a group
  const float* weight;
  int64_t group;
  float eps;

  template <int R>
  __device__ void build(__nv_bfloat16* xs, int64_t k) const {
    __shared__ float scale[R][kMaxGroups];
    const int groups = static_cast<int>(k / group), hpg = static_cast<int>(heads / groups);
    const bool part = kBlockThreads == kThreads || threadIdx.x < kThreads;  // the others only meet the barriers
    for (int item = part ? threadIdx.x : R * groups; item < R * groups; item += kThreads) {
      const int r = item / groups, gi = item % groups;
      const float* head_ssq = ssq + r * heads + gi * hpg;
      float t = 0.0f;
#pragma unroll 8
      for (int j = 0; j < hpg; ++j) t += head_ssq[j];
      scale[r][gi] = rsqrtf(t / static_cast<float>(group) + eps);
    }
    __syncthreads();
    const int k4 = static_cast<int>(k / 4), group4 = static_cast<int>(group / 4);
    const float4* wt = reinterpret_cast<const float4*>(weight);
#pragma unroll
    for (int r = 0; r < R; ++r) {
      if (!part) break;
      const float4* gv = reinterpret_cast<const float4*>(g + r * k);
      __nv_bfloat162* out = reinterpret_cast<__nv_bfloat162*>(xs + r * k);
#pragma unroll 4
      for (int i = threadIdx.x; i < k4; i += kThreads) {  // 4 loads of each in flight, not one
        const float4 a = gv[i], w = wt[i];
        const float sc = scale[r][i / group4];
        out[2 * i] = __floats2bfloat162_rn(a.x * sc * w.x, a.y * sc * w.y);
        out[2 * i + 1] = __floats2bfloat162_rn(a.z * sc * w.z, a.w * sc * w.w);
      }
    }
    __syncthreads();
  }
};

// ---- epilogues: one finished dot product v = (W · x_r)[row] --------------------------------------------

struct StoreEpilogue {  // Y[r, row] = v
  static constexpr uint32_t kTraceKind = kTraceHead;
  float* Y;
  int64_t n;
  __device__ void store(int r, int64_t row, float v) const { Y[r * n + row] = v; }
};

struct ResidualEpilogue {  // resid[r, row] += v (+ bias)
  static constexpr uint32_t kTraceKind = kTraceOutProj;
  float* resid;
  const float* bias;  // may be null
  int64_t n;
  __device__ void store(int r, int64_t row, float v) const {
    float* p = resid + r * n + row;
    const float s = v + *p;
    *p = bias ? s + bias[row] : s;
  }
};

struct InProjEpilogue {  // the three parts of in_proj's output: z | xBC | dt
  static constexpr uint32_t kTraceKind = kTraceInProj;
  DecodeInProjOut o;
  __device__ void store(int r, int64_t row, float v) const {
    if (o.bias) v += o.bias[row];
    if (row < o.d_inner) {
      o.z[r * o.z_stride + row] = v;
      return;
    }
    const int64_t c = row - o.d_inner;
    if (c < o.conv_dim) {
      // Padding rows (slot < 0) read slot 0's window and store nothing there: no load waits on the branch.
      const int slot = o.slots[r], pos = o.pos[r];
      float* win = o.conv_state + max(slot, 0) * o.conv_slot_stride + c;
      const float acc = conv_ring_sum(win, o.conv_dim, pos, o.conv_w + c * o.K, o.conv_b[c], v, o.K);
      if (slot < 0) {  // padding row: no state change
        o.xbc[r * o.conv_dim + c] = 0.0f;
        return;
      }
      win[pos * o.conv_dim] = v;
      o.xbc[r * o.conv_dim + c] = silu_f(acc);
      return;
    }
    const int64_t h = c - o.conv_dim;
    o.dt[r * o.heads + h] = softplus_clamp(v + o.dt_bias[h], o.dt_lo, o.dt_hi);
  }
};

}  // namespace
}  // namespace pcm::cuda
