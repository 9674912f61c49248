// One SSD decode step of one (row b, head h) state tile, shared by the step kernel (ssd_decode.cu) and the whole-step
// persistent decode kernel (decode_persistent.cu).
#pragma once
#include <cstdint>

#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/ops.h"

namespace pcm::cuda {
namespace {

template <class S, int V>
struct alignas(sizeof(S) * V) StatePack {
  S v[V];
};

// One (b, h) tile of a live slot: its inputs into registers, then wait() (`tile` is where the state is read: the
// step kernel's shared-memory copy, there after wait(), or `st` itself), then each row p: s = decay * s + dt * x[p] * B, written back to `st`, y[p] = s · C + D x[p]
// (times silu(z[p]) when gated). Returns the lane's Σ g² over the rows it wrote (gated; else 0).
// x[p] and z[p] of the lane's next row are loaded one row ahead (the first before wait()): read where
// they are used, each was a dependent global load per row (H200 window 1: the gated step reading z there
// cost 15-38 µs per layer at B = 64-128).
template <class S, int V, int J, class Wait>
__device__ float step_tile(const S* tile, S* st, float* yb, int b, int h, const SsdIn& in, const SsdDims& d,
                           const RawDt& raw, const DecodeGate& gate, int lr, Wait wait) {
  constexpr bool kBulk = V * sizeof(S) == 16;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const int64_t HP = static_cast<int64_t>(d.H) * d.P;
  const int g = h / (d.H / d.G), sub = lane % lr, rows_per_step = 32 / lr;
  const float* row = in.xbc + b * in.stride;
  const float* x = row + static_cast<int64_t>(h) * d.P;
  const float* Bv = row + HP + static_cast<int64_t>(g) * d.N;
  const float* Cv = Bv + static_cast<int64_t>(d.G) * d.N;
  const float dt = raw.raw ? softplus_clamp(raw.raw[b * raw.stride + h] + raw.bias[h], raw.lo, raw.hi)
                          : in.dt[static_cast<int64_t>(b) * d.H + h];
  const float decay = __expf(dt * in.A[h]), Dh = in.D[h];
  float Bq[J][V], Cq[J][V];
#pragma unroll
  for (int j = 0; j < J; ++j)
#pragma unroll
    for (int v = 0; v < V; ++v) {
      const int n = (sub + j * lr) * V + v;
      const bool ok = kBulk || n < d.N;
      Bq[j][v] = ok ? Bv[n] : 0.0f;
      Cq[j][v] = ok ? Cv[n] : 0.0f;
    }
  const float* zb = gate.z ? gate.z + b * gate.z_stride + static_cast<int64_t>(h) * d.P : nullptr;
  const int step = warps * rows_per_step;
  int p = warp * rows_per_step + lane / lr;
  float x_next = p < d.P ? x[p] : 0.0f, z_next = zb && p < d.P ? zb[p] : 0.0f;
  wait();
  using Pack = StatePack<S, V>;
  float ss = 0.0f;
#pragma unroll 2
  for (; p - lane / lr < d.P; p += step) {  // p - lane / lr: the warp's first row (same for all its lanes)
    const float xp = x_next, zp = z_next;
    if (p + step < d.P) {
      x_next = x[p + step];
      if (zb) z_next = zb[p + step];
    }
    float acc = 0.0f;
    if (p < d.P) {
      const float dx = dt * xp;
#pragma unroll
      for (int j = 0; j < J; ++j) {
        const int64_t n0 = static_cast<int64_t>(p) * d.N + (sub + j * lr) * V;
        if (!kBulk && (sub + j * lr) >= d.N) continue;
        const Pack in_pk = *reinterpret_cast<const Pack*>(tile + n0);
        Pack out_pk;
#pragma unroll
        for (int v = 0; v < V; ++v) {
          const float s = decay * to_float(in_pk.v[v]) + dx * Bq[j][v];
          out_pk.v[v] = from_float<S>(s);
          acc += s * Cq[j][v];
        }
        *reinterpret_cast<Pack*>(st + n0) = out_pk;
      }
    }
    for (int o = lr / 2; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if (sub == 0 && p < d.P) {
      float out = acc + Dh * xp;
      if (zb) {
        out *= silu_f(zp);
        ss += out * out;
      }
      yb[p] = out;
    }
  }
  return ss;
}

// The head's Σ g² (gated step) from each lane's part, summed in a fixed order (same bits every run).
// Every thread of the block calls it; it ends with the block synchronised.
__device__ void write_head_ssq(float ss, float* red, float* out) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  ss = warp_sum(ss);
  if (lane == 0) red[warp] = ss;
  __syncthreads();
  if (threadIdx.x == 0) {
    float t = 0.0f;
    for (int w = 0; w < warps; ++w) t += red[w];
    *out = t;
  }
}

// Lanes per row for 16-byte packs of V values: the packs of a row, when they are a power of two up to 32
// (J = 1), or 32 lanes with J = packs / 32; 0 when the row does not split that way.
inline int lanes_per_row(int N, int V, int J) {
  if (N % V != 0) return 0;
  const int packs = N / V;
  if (J == 1 && packs <= 32 && (packs & (packs - 1)) == 0) return packs;
  if (packs == 32 * J) return 32;
  return 0;
}

// The step's split of a state row of S: one 16-byte pack per lane (*J = 1) where the row allows, else two; the
// lanes per row, 0 when neither fits (the caller then takes its general layout).
template <class S>
int step_lanes(int N, int* J) {
  for (*J = 1; *J <= 2; ++*J)
    if (const int lr = lanes_per_row(N, 16 / sizeof(S), *J)) return lr;
  return 0;
}

}  // namespace
}  // namespace pcm::cuda
