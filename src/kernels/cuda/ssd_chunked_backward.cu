// Chunked (matrix-form) backward of the SSD over packed sequences: the CPU ssd_chunked_backward's terms,
// per chunk c of q <= Q rows and head h (cs = running sum of dt·A in the chunk, S0 the entering state,
// w_j = e^(cs_last − cs_j) dt_j, L_ij = e^(cs_i − cs_j) for j <= i, dS the adjoint of the leaving state):
//   Y     = diag(e^cs) C S0ᵀ + D X + M X,  M = (C Bᵀ) ∘ L ∘ dtᵀ       S_end = e^cs_last S0 + (w∘X)ᵀ B
//   dX    = D dY + Mᵀ dY + w ∘ (B dSᵀ)                                dCB   = (dY Xᵀ) ∘ L ∘ dtᵀ
//   dC    = diag(e^cs) dY S0 + dCB B                                  dB    = (w∘X) dS + dCBᵀ C
//   dS0   = (diag(e^cs) dY)ᵀ C + e^cs_last dS
// and the gradient of cs (then dt and A) from per-row sums of those products. Launches, in order:
//   ssd_chunk_states   recompute cs, C·Bᵀ and the entering states as the forward (ssd.cu)
//   dstate_local       U_c = (diag(e^cs) dY)ᵀ C                        [chunks, H, P, N]
//                      (with tc, as dcb / dx / dbc below: one mma.sync block per (chunk, head), ssd_backward_u_tc.cu)
//   dstate_pass        sequential over each sequence's chunks, last to first: dS_c = U_{c+1} + e^cs_last dS_{c+1}
//   dcb                dCB, and the row/column sums of R = (dY Xᵀ ∘ L) ∘ CB for dcs and ddt; with tc (tf32,
//                      P = 64) only Σ_h dCB over each group's heads (all dB, dC need), mma.sync blocks per
//                      (tile pair, chunk, group) looping over the heads (ssd_backward_dcb_tc.cu)
//   dx                 dX, and <B dSᵀ, X> per row (the state term of dcs, ddt); with tc (tf32, P = 64) one
//                      mma.sync block per (chunk, head) instead (ssd_backward_dx_tc.cu)
//   dbc                per-head dB and dC, and <diag(e^cs) dY S0, C> per row (the inter-chunk term of dcs);
//                      with tc (tf32, P = 64) dB, dC per group straight into dxbc, mma.sync blocks per (chunk,
//                      group, row tile, column tile) looping over the heads (ssd_backward_bc_tc.cu)
//   scalars            per (chunk, head): dcs from the partial sums, then ddt and the dA, dD partials
//   group/head sums    dB, dC over each group's heads (not with tc); dA, dD over chunks
// Without tc, every matrix step is a 64x64 tile per block (ssd_tile.cuh); all parallel over chunks x heads
// except the pass, which is elementwise over [P, N]. Partial sums go to scratch and are added in a fixed order
// (no atomics): a step is bit-reproducible.
#include <algorithm>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/mma_tf32.cuh"
#include "kernels/cuda/ssd_backward_bc_tc.h"
#include "kernels/cuda/ssd_backward_dcb_tc.h"
#include "kernels/cuda/ssd_backward_dx_tc.h"
#include "kernels/cuda/ssd_backward_u_tc.h"
#include "kernels/cuda/ssd_backward_sums.cuh"
#include "kernels/cuda/ssd_chunks.h"
#include "kernels/cuda/ssd_state_blocks.cuh"
#include "kernels/cuda/ssd_tile.cuh"
#include "kernels/cuda/train_ops.h"

namespace pcm::cuda {
namespace {

using namespace ssd_tile;

__host__ __device__ inline int tiles(int64_t n) { return static_cast<int>((n + kTile - 1) / kTile); }

struct Bwd {
  SsdChunkScratch f;  // cs, C·Bᵀ, entering states
  float* dS;          // [chunks, H, P, N]: U_c, after the pass the adjoint of the state leaving chunk c (tc: in 4 x 4
                      // blocks, ssd_state_blocks.cuh)
  float* dcb;         // [chunks, H, Q, Q]: dCB (rows i < len, columns j <= i)
  float* col;         // [chunks, H, qt, Q]: Σ_i R_ij over one i-tile
  float* row;         // [chunks, H, qt, Q]: Σ_j R_ij dt_j over one j-tile
  float* u;           // [chunks, H, pt, Q]: <(B dSᵀ)_j, X_j> over one p-tile
  float* inter;       // [chunks, H, ni, Q]: <(diag(e^cs) dY S0)_i, C_i> over one n-tile (tc: 32 columns)
  float* dDt;         // [chunks, H, qt, pt]: Σ dY∘X over one tile
  float* sdp;         // [chunks, H, ceil(P N / 256)]: <dS_c, S0_c> per pass block
  float* dAc;         // [chunks, H]
  float* dDc;         // [chunks, H]
  float* dBp;         // [T, H, N]
  float* dCp;         // [T, H, N]
  float* cbt;         // [chunks, G, Q, Q]: C·Bᵀ transposed (tc: dX reads its columns as rows)
  float* b_r;         // [T, G N]: B rounded to TF32 (tc: dX's A operand)
  float* c_t;         // [chunks, G, N, Q]: each chunk's C transposed, rounded to TF32 (tc: U's B operand)
};

struct Ctx {
  SsdIn in;
  const float* dy;  // [T, H * P]
  float* dx;        // x columns of dxbc, row stride dx_stride
  int64_t dx_stride;
  SsdDims d;
  ChunkTable ct;
  Bwd b;
  int qt, pt, nt;  // tiles over Q, P, N
  int ni;          // inter slots per row: nt, or with tc one per 32 columns of N
  bool bf16;       // tc: dX on bf16 mma
};

// One (chunk, head) block's view: rows of its chunk, the head's x / dy columns and its group's B / C.
struct View {
  const float *x, *B, *C, *dy;
  int64_t ld, ldy;
  int c, h, g, start, len;
  __device__ View(const Ctx& k, int ch) {
    c = ch / k.d.H;
    h = ch % k.d.H;
    g = h / (k.d.H / k.d.G);
    start = k.ct.chunk_start[c];
    len = k.ct.chunk_len[c];
    ld = k.in.stride;
    ldy = static_cast<int64_t>(k.d.H) * k.d.P;
    x = k.in.xbc + start * ld + static_cast<int64_t>(h) * k.d.P;
    B = k.in.xbc + start * ld + ldy + static_cast<int64_t>(g) * k.d.N;
    C = B + static_cast<int64_t>(k.d.G) * k.d.N;
    dy = k.dy + start * ldy + static_cast<int64_t>(h) * k.d.P;
  }
  __device__ int64_t ch(const Ctx& k) const { return static_cast<int64_t>(c) * k.d.H + h; }
};

// cs and dt of the block's chunk into shared memory (rows < len only: nothing reads further).
__device__ void load_scalars(float* csS, float* dtS, const Ctx& k, const View& v) {
  const float* cs = k.b.f.cs + v.ch(k) * k.ct.Q;
  for (int j = threadIdx.x; j < v.len; j += blockDim.x) {
    csS[j] = cs[j];
    dtS[j] = k.in.dt[static_cast<int64_t>(v.start + j) * k.d.H + v.h];
  }
  __syncthreads();
}

// Slab loads: each thread computes its kPer elements into registers, then stores them all, so its global
// loads are in flight together rather than one round trip each (a load under a bounds branch cannot be
// hoisted: the element functions load from a clamped, always valid address and select 0 outside).
constexpr int kPer = kTile * kSlab / kThreads;
static_assert(kPer * kThreads == kTile * kSlab, "slab elements per thread");

// s.a[r][k] = f(r, k). KFast: consecutive threads take consecutive k (memory contiguous along k),
// otherwise consecutive r.
template <bool KFast, class F>
__device__ __forceinline__ void fill_a(TileSmem& s, F f) {
  float v[kPer];
#pragma unroll
  for (int u = 0; u < kPer; ++u) {
    const int e = threadIdx.x + u * kThreads;
    if constexpr (KFast) v[u] = f(e / kSlab, e % kSlab);
    else v[u] = f(e % kTile, e / kTile);
  }
#pragma unroll
  for (int u = 0; u < kPer; ++u) {
    const int e = threadIdx.x + u * kThreads;
    if constexpr (KFast) s.a[e / kSlab][e % kSlab] = v[u];
    else s.a[e % kTile][e / kTile] = v[u];
  }
}

// s.b[k][c] = f(k, c), KFast as in fill_a.
template <bool KFast, class F>
__device__ __forceinline__ void fill_b(TileSmem& s, F f) {
  float v[kPer];
#pragma unroll
  for (int u = 0; u < kPer; ++u) {
    const int e = threadIdx.x + u * kThreads;
    if constexpr (KFast) v[u] = f(e % kSlab, e / kSlab);
    else v[u] = f(e / kTile, e % kTile);
  }
#pragma unroll
  for (int u = 0; u < kPer; ++u) {
    const int e = threadIdx.x + u * kThreads;
    if constexpr (KFast) s.b[e % kSlab][e / kSlab] = v[u];
    else s.b[e / kTile][e % kTile] = v[u];
  }
}

// U_c[p, n] = Σ_i e^cs_i dY[i, p] C[i, n]
template <class Acc>
__global__ void __launch_bounds__(kThreads, 2) dstate_local_kernel(Ctx k) {
  __shared__ TileSmem s;
  __shared__ float csS[kMaxQ], dtS[kMaxQ];
  const View v(k, blockIdx.z);
  load_scalars(csS, dtS, k, v);
  const int p0 = blockIdx.y * kTile, n0 = blockIdx.x * kTile, P = k.d.P, N = k.d.N;
  Acc acc;
  acc.zero();
  for (int i0 = 0; i0 < v.len; i0 += kSlab) {
    fill_a<false>(s, [&](int r, int kk) {
      const int i = i0 + kk, p = p0 + r, ic = min(i, v.len - 1);
      const float y = __ldg(v.dy + ic * v.ldy + min(p, P - 1)), e = __expf(csS[ic]);
      return (i < v.len && p < P) ? e * y : 0.0f;
    });
    fill_b<false>(s, [&](int kk, int c) {
      const int i = i0 + kk, n = n0 + c;
      const float x = __ldg(v.C + min(i, v.len - 1) * v.ld + min(n, N - 1));
      return (i < v.len && n < N) ? x : 0.0f;
    });
    __syncthreads();
    acc.mma(s);
    __syncthreads();
  }
  acc.store(s);
  __syncthreads();
  float* out = k.b.dS + v.ch(k) * P * N;
  for (int e = threadIdx.x; e < kTile * kTile; e += kThreads) {
    const int r = e / kTile, cc = e % kTile, p = p0 + r, n = n0 + cc;
    if (p < P && n < N) out[static_cast<int64_t>(p) * N + n] = s.out[r][cc];
  }
}

// Last chunk to first of sequence blockIdx.z, parallel over (head, p, n): U_c -> dS_c (the adjoint of the
// state leaving chunk c); what is left at the end is the adjoint of the sequence's initial state. Also the
// block's part of <dS_c, S0_c> (the scalar step's last-row term), summed over the block in a fixed order into
// sdp[c, h, block]: the scalar step then adds PN / 256 partials instead of reading dS and S0 again.
// tc: dS stored rounded to TF32 (the tc kernels' operand as they would round it; the sums use the fp32 value), U and dS
// in 4 x 4 blocks (ssd_state_blocks.cuh; the entering states and dstate0 stay row-major).
__global__ void __launch_bounds__(256) dstate_pass_kernel(Ctx k, float* dstate0, bool tc) {
  constexpr int kBatch = 4;  // loads of several chunks in flight before the dependent updates
  __shared__ float red[kBatch][32];
  const int64_t PN = static_cast<int64_t>(k.d.P) * k.d.N;
  const int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const bool ok = e < PN;  // no early return: the block sums below need every thread
  const int64_t ec = ok ? e : 0, er = tc ? state_blocks::row_major(ec, k.d.N) : ec;  // U / dS index, S0's
  const int h = blockIdx.y, sq = blockIdx.z, c_begin = k.ct.seq_chunk[sq], c_end = k.ct.seq_chunk[sq + 1];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  float run = 0.0f;
  for (int c1 = c_end; c1 > c_begin; c1 -= kBatch) {
    float U[kBatch], decay[kBatch], S0[kBatch], sd[kBatch];
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
      const int c = max(c1 - 1 - u, c_begin);
      const int64_t ch = static_cast<int64_t>(c) * k.d.H + h;
      U[u] = k.b.dS[ch * PN + ec];
      S0[u] = k.b.f.states[ch * PN + er];
      decay[u] = __expf(k.b.f.cs[ch * k.ct.Q + k.ct.chunk_len[c] - 1]);
    }
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
      const int c = c1 - 1 - u;
      sd[u] = 0.0f;
      if (c >= c_begin) {  // uniform over the block (one sequence)
        const int64_t ch = static_cast<int64_t>(c) * k.d.H + h;
        if (ok) k.b.dS[ch * PN + e] = tc ? mma_tf32::round_tf32(run) : run;
        sd[u] = ok ? run * S0[u] : 0.0f;
        run = U[u] + decay[u] * run;
      }
    }
    // The batch's block sums together (warp sums, then the warps in order): two barriers per batch, not per chunk.
#pragma unroll
    for (int u = 0; u < kBatch; ++u) sd[u] = warp_sum(sd[u]);
    __syncthreads();  // red may still be read for the previous batch
    if (lane == 0)
#pragma unroll
      for (int u = 0; u < kBatch; ++u) red[u][warp] = sd[u];
    __syncthreads();
    const int c = c1 - 1 - static_cast<int>(threadIdx.x);
    if (threadIdx.x < kBatch && c >= c_begin) {
      float t = 0.0f;
      for (int w = 0; w < warps; ++w) t += red[threadIdx.x][w];
      k.b.sdp[(static_cast<int64_t>(c) * k.d.H + h) * gridDim.x + blockIdx.x] = t;
    }
  }
  if (dstate0 && ok) dstate0[(static_cast<int64_t>(sq) * k.d.H + h) * PN + er] = run;
}

// Tile (i-tile blockIdx.y, j-tile blockIdx.x <= it) of dM = dY Xᵀ; then dCB = dM L dt_j, R = dM L CB and
// R's column sums and dt-weighted row sums over the tile.
template <class Acc>
__global__ void __launch_bounds__(kThreads, 2) dcb_kernel(Ctx k) {
  const int jt = blockIdx.x, it = blockIdx.y;
  if (jt > it) return;
  __shared__ TileSmem s;
  __shared__ float csS[kMaxQ], dtS[kMaxQ];
  const View v(k, blockIdx.z);
  const int i0 = it * kTile, j0 = jt * kTile, P = k.d.P, Q = k.ct.Q;
  if (i0 >= v.len) return;
  load_scalars(csS, dtS, k, v);
  Acc acc;
  acc.zero();
  for (int p0 = 0; p0 < P; p0 += kSlab) {
    fill_a<true>(s, [&](int r, int kk) {
      const int i = i0 + r, p = p0 + kk;
      const float y = __ldg(v.dy + min(i, v.len - 1) * v.ldy + min(p, P - 1));
      return (i < v.len && p < P) ? y : 0.0f;
    });
    fill_b<true>(s, [&](int kk, int c) {
      const int j = j0 + c, p = p0 + kk;
      const float x = __ldg(v.x + min(j, v.len - 1) * v.ld + min(p, P - 1));
      return (j < v.len && p < P) ? x : 0.0f;
    });
    __syncthreads();
    acc.mma(s);
    __syncthreads();
  }
  acc.store(s);
  __syncthreads();
  const float* CB = k.b.f.cb + (static_cast<int64_t>(v.c) * k.d.G + v.g) * Q * Q;
  float* dCB = k.b.dcb + v.ch(k) * Q * Q;
  constexpr int kOut = kTile * kTile / kThreads;
  float cbv[kOut];  // all CB loads first (clamped into the causal part), as in fill_a
#pragma unroll
  for (int u = 0; u < kOut; ++u) {
    const int e = threadIdx.x + u * kThreads, ic = min(i0 + e / kTile, v.len - 1);
    cbv[u] = __ldg(CB + static_cast<int64_t>(ic) * Q + min(j0 + e % kTile, ic));
  }
#pragma unroll
  for (int u = 0; u < kOut; ++u) {
    const int e = threadIdx.x + u * kThreads, r = e / kTile, cc = e % kTile, i = i0 + r, j = j0 + cc;
    float R = 0.0f;
    if (i < v.len && j < v.len) {
      float g = 0.0f;
      if (j <= i) {
        const float gL = s.out[r][cc] * __expf(csS[i] - csS[j]);
        R = gL * cbv[u];
        g = gL * dtS[j];
      }
      dCB[static_cast<int64_t>(i) * Q + j] = g;
    }
    s.out[r][cc] = R;
  }
  __syncthreads();
  const int64_t part = (v.ch(k) * k.qt) * Q;
  const int t = threadIdx.x;
  if (t < kTile) {  // column j: Σ over the tile's rows
    const int j = j0 + t;
    float sum = 0.0f;
    for (int r = 0; r < kTile; ++r) sum += s.out[r][t];
    if (j < v.len) k.b.col[part + static_cast<int64_t>(it) * Q + j] = sum;
  } else if (t < 2 * kTile) {  // row i: Σ over the tile's columns, weighted by dt_j
    const int r = t - kTile, i = i0 + r;
    float sum = 0.0f;
    for (int cc = 0; cc < kTile && j0 + cc < v.len; ++cc) sum += s.out[r][cc] * dtS[j0 + cc];
    if (i < v.len) k.b.row[part + static_cast<int64_t>(jt) * Q + i] = sum;
  }
}

// Epilogue mapping of a 64x64 tile: 4 threads per row (consecutive lanes), columns q4, q4 + 4, ...;
// the same mapping in both stages, so each thread re-reads only what it wrote itself.
constexpr int kColsPerThread = kTile / 4;

// dX tile (rows j of j-tile blockIdx.y, columns p of p-tile blockIdx.x):
//   stage 1  dXw = B dSᵀ -> dX = D dY + w dXw, u_j = <dXw_j, X_j>, Σ dY∘X
//   stage 2  dX += Mᵀ dY
template <class Acc>
__global__ void __launch_bounds__(kThreads, 2) dx_kernel(Ctx k) {
  __shared__ TileSmem s;
  __shared__ float csS[kMaxQ], dtS[kMaxQ], red[32];
  const View v(k, blockIdx.z);
  const int ptile = blockIdx.x, jt = blockIdx.y, j0 = jt * kTile, p0 = ptile * kTile, P = k.d.P, N = k.d.N,
            Q = k.ct.Q;
  if (j0 >= v.len) return;
  load_scalars(csS, dtS, k, v);
  const float* dS = k.b.dS + v.ch(k) * P * N;
  Acc acc;
  acc.zero();
  for (int n0 = 0; n0 < N; n0 += kSlab) {
    fill_a<true>(s, [&](int r, int kk) {
      const int j = j0 + r, n = n0 + kk;
      const float b = __ldg(v.B + min(j, v.len - 1) * v.ld + min(n, N - 1));
      return (j < v.len && n < N) ? b : 0.0f;
    });
    fill_b<true>(s, [&](int kk, int c) {
      const int p = p0 + c, n = n0 + kk;
      const float d = __ldg(dS + static_cast<int64_t>(min(p, P - 1)) * N + min(n, N - 1));
      return (p < P && n < N) ? d : 0.0f;
    });
    __syncthreads();
    acc.mma(s);
    __syncthreads();
  }
  acc.store(s);
  __syncthreads();
  const int r = threadIdx.x / 4, q4 = threadIdx.x % 4, j = j0 + r;
  float* dxrow = k.dx + (v.start + static_cast<int64_t>(j)) * k.dx_stride + static_cast<int64_t>(v.h) * P;
  const float Dh = k.in.D[v.h];
  float usum = 0.0f, dsum = 0.0f;
  if (j < v.len) {
    const float w = __expf(csS[v.len - 1] - csS[j]) * dtS[j];
    float xv[kColsPerThread], dyv[kColsPerThread];  // loads first (clamped), as in fill_a
#pragma unroll
    for (int m = 0; m < kColsPerThread; ++m) {
      const int p = min(p0 + q4 + 4 * m, P - 1);
      xv[m] = __ldg(v.x + j * v.ld + p);
      dyv[m] = __ldg(v.dy + j * v.ldy + p);
    }
#pragma unroll
    for (int m = 0; m < kColsPerThread; ++m) {
      const int cc = q4 + 4 * m, p = p0 + cc;
      if (p < P) {
        const float g = s.out[r][cc];
        usum += g * xv[m];
        dsum += dyv[m] * xv[m];
        dxrow[p] = Dh * dyv[m] + w * g;
      }
    }
  }
  usum += __shfl_xor_sync(0xffffffffu, usum, 1);
  usum += __shfl_xor_sync(0xffffffffu, usum, 2);
  if (q4 == 0 && j < v.len) k.b.u[(v.ch(k) * k.pt + ptile) * Q + j] = usum;
  dsum = block_sum(dsum, red);
  if (threadIdx.x == 0) k.b.dDt[(v.ch(k) * k.qt + jt) * k.pt + ptile] = dsum;

  const float* CB = k.b.f.cb + (static_cast<int64_t>(v.c) * k.d.G + v.g) * Q * Q;
  acc.zero();
  for (int i0 = j0; i0 < v.len; i0 += kSlab) {
    fill_a<false>(s, [&](int rr, int kk) {  // M[i, j] for row j = j0 + rr of Mᵀ
      const int i = i0 + kk, jj = j0 + rr, ic = min(i, v.len - 1), jc = min(jj, ic);
      const float m = __ldg(CB + static_cast<int64_t>(ic) * Q + jc) * __expf(csS[ic] - csS[jc]) * dtS[jc];
      return (i < v.len && jj <= i) ? m : 0.0f;
    });
    fill_b<false>(s, [&](int kk, int c) {
      const int i = i0 + kk, p = p0 + c;
      const float y = __ldg(v.dy + min(i, v.len - 1) * v.ldy + min(p, P - 1));
      return (i < v.len && p < P) ? y : 0.0f;
    });
    __syncthreads();
    acc.mma(s);
    __syncthreads();
  }
  acc.store(s);
  __syncthreads();
  if (j < v.len)
    for (int m = 0; m < kColsPerThread; ++m) {
      const int cc = q4 + 4 * m, p = p0 + cc;
      if (p < P) dxrow[p] += s.out[r][cc];
    }
}

// Per-head dC (is_c) or dB tile, rows of row-tile blockIdx.y, columns n of n-tile blockIdx.x:
//   dC = diag(e^cs) dY S0 + dCB B    (and <first term_i, C_i> for dcs)
//   dB = (w∘X) dS + dCBᵀ C
template <class Acc, bool is_c>
__global__ void __launch_bounds__(kThreads, 2) dbc_kernel(Ctx k) {
  __shared__ TileSmem s;
  __shared__ float csS[kMaxQ], dtS[kMaxQ];
  const View v(k, blockIdx.z);
  const int ntile = blockIdx.x, row0 = blockIdx.y * kTile, n0 = ntile * kTile, P = k.d.P, N = k.d.N, Q = k.ct.Q;
  if (row0 >= v.len) return;
  load_scalars(csS, dtS, k, v);
  const float last = csS[v.len - 1];
  const float* St = (is_c ? k.b.f.states : k.b.dS) + v.ch(k) * P * N;  // S0 for dC, dS for dB
  Acc acc;
  acc.zero();
  for (int p0 = 0; p0 < P; p0 += kSlab) {  // stage 1: contraction over p
    fill_a<true>(s, [&](int r, int kk) {
      const int t = row0 + r, p = p0 + kk, tc = min(t, v.len - 1);
      const float val = __ldg((is_c ? v.dy + tc * v.ldy : v.x + tc * v.ld) + min(p, P - 1));
      const float scale = is_c ? __expf(csS[tc]) : __expf(last - csS[tc]) * dtS[tc];
      return (t < v.len && p < P) ? scale * val : 0.0f;
    });
    fill_b<false>(s, [&](int kk, int c) {
      const int p = p0 + kk, n = n0 + c;
      const float st = __ldg(St + static_cast<int64_t>(min(p, P - 1)) * N + min(n, N - 1));
      return (p < P && n < N) ? st : 0.0f;
    });
    __syncthreads();
    acc.mma(s);
    __syncthreads();
  }
  const int r = threadIdx.x / 4, q4 = threadIdx.x % 4, t = row0 + r;
  float* out = (is_c ? k.b.dCp : k.b.dBp) + ((v.start + static_cast<int64_t>(t)) * k.d.H + v.h) * N;
  if constexpr (is_c) {  // the inter-chunk term is complete: its dot with C, and the first write of dC
    acc.store(s);
    __syncthreads();
    float dot = 0.0f;
    if (t < v.len) {
      float cv[kColsPerThread];  // loads first (clamped), as in fill_a
#pragma unroll
      for (int m = 0; m < kColsPerThread; ++m) cv[m] = __ldg(v.C + t * v.ld + min(n0 + q4 + 4 * m, N - 1));
#pragma unroll
      for (int m = 0; m < kColsPerThread; ++m) {
        const int cc = q4 + 4 * m, n = n0 + cc;
        if (n < N) {
          dot += s.out[r][cc] * cv[m];
          out[n] = s.out[r][cc];
        }
      }
    }
    dot += __shfl_xor_sync(0xffffffffu, dot, 1);
    dot += __shfl_xor_sync(0xffffffffu, dot, 2);
    if (q4 == 0 && t < v.len) k.b.inter[(v.ch(k) * k.ni + ntile) * Q + t] = dot;
    __syncthreads();  // s.out is read above and rewritten by the next store
    acc.zero();
  }
  const float* dCB = k.b.dcb + v.ch(k) * Q * Q;
  if constexpr (is_c) {  // stage 2: Σ_{j <= i} dCB[i, j] B[j, n]
    const int j_end = min(v.len, row0 + kTile);
    for (int j0 = 0; j0 < j_end; j0 += kSlab) {
      fill_a<true>(s, [&](int rr, int kk) {
        const int i = row0 + rr, j = j0 + kk, ic = min(i, v.len - 1);
        const float g = __ldg(dCB + static_cast<int64_t>(ic) * Q + min(j, ic));
        return (i < v.len && j <= i) ? g : 0.0f;
      });
      fill_b<false>(s, [&](int kk, int c) {
        const int j = j0 + kk, n = n0 + c;
        const float b = __ldg(v.B + min(j, v.len - 1) * v.ld + min(n, N - 1));
        return (j < v.len && n < N) ? b : 0.0f;
      });
      __syncthreads();
      acc.mma(s);
      __syncthreads();
    }
  } else {  // stage 2: Σ_{i >= j} dCB[i, j] C[i, n]
    for (int i0 = row0; i0 < v.len; i0 += kSlab) {
      fill_a<false>(s, [&](int rr, int kk) {  // dCBᵀ: row j = row0 + rr, column i
        const int i = i0 + kk, j = row0 + rr, ic = min(i, v.len - 1);
        const float g = __ldg(dCB + static_cast<int64_t>(ic) * Q + min(j, ic));
        return (i < v.len && j <= i) ? g : 0.0f;
      });
      fill_b<false>(s, [&](int kk, int c) {
        const int i = i0 + kk, n = n0 + c;
        const float cv = __ldg(v.C + min(i, v.len - 1) * v.ld + min(n, N - 1));
        return (i < v.len && n < N) ? cv : 0.0f;
      });
      __syncthreads();
      acc.mma(s);
      __syncthreads();
    }
  }
  acc.store(s);
  __syncthreads();
  if (t < v.len)
    for (int m = 0; m < kColsPerThread; ++m) {
      const int cc = q4 + 4 * m, n = n0 + cc;
      if (n < N) out[n] = is_c ? out[n] + s.out[r][cc] : s.out[r][cc];
    }
}

// out[t, c] = xbc[t, off + c] rounded to TF32 (c < cols): B for dX's fragments, rounded once per layer instead of
// on every fragment load of every head.
__global__ void round_cols_kernel(float* out, const float* xbc, int64_t ld, int64_t off, int64_t T, int cols) {
  const int64_t n = T * cols;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < n;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = e / cols, c = e % cols;
    out[e] = mma_tf32::round_tf32(xbc[t * ld + off + c]);
  }
}

// Inclusive prefix sum over the block (blockDim.x = kMaxQ); `tot` holds kMaxQ / 32 floats.
__device__ float block_scan(float v, float* tot) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int o = 1; o < 32; o <<= 1) {
    const float n = __shfl_up_sync(0xffffffffu, v, o);
    if (lane >= o) v += n;
  }
  __syncthreads();  // tot may still be read by a previous call
  if (lane == 31) tot[warp] = v;
  __syncthreads();
  for (int w = 0; w < warp; ++w) v += tot[w];
  return v;
}

// Block per (chunk, head), thread i per row: dcs_i from the partial sums, then
//   ddt_i = Σ_i' R_i'i + e^(cs_last − cs_i) u_i + A Σ_{k >= i} dcs_k,   dA_c = Σ_i dcs_i Σ_{k <= i} dt_k.
__global__ void __launch_bounds__(kMaxQ) scalars_kernel(Ctx k, float* ddt) {
  __shared__ float red[32], tot[kMaxQ / 32], buf[kMaxQ];
  const View v(k, blockIdx.x);
  const int i = threadIdx.x, Q = k.ct.Q;
  const int64_t ch = v.ch(k), PN = static_cast<int64_t>(k.d.P) * k.d.N;
  const bool ok = i < v.len;
  const float* cs = k.b.f.cs + ch * Q;
  const float last = cs[v.len - 1];
  float csi = 0.0f, dti = 0.0f, colR = 0.0f, rowR = 0.0f, u = 0.0f, inter = 0.0f;
  if (ok) {
    csi = cs[i];
    dti = k.in.dt[static_cast<int64_t>(v.start + i) * k.d.H + v.h];
    for (int it = i / kTile; it * kTile < v.len; ++it) colR += k.b.col[(ch * k.qt + it) * Q + i];
    for (int jt = 0; jt <= i / kTile; ++jt) rowR += k.b.row[(ch * k.qt + jt) * Q + i];
    for (int pt = 0; pt < k.pt; ++pt) u += k.b.u[(ch * k.pt + pt) * Q + i];
    for (int nt = 0; nt < k.ni; ++nt) inter += k.b.inter[(ch * k.ni + nt) * Q + i];
  }
  const float decay = ok ? __expf(last - csi) : 0.0f, tcs = decay * dti * u;
  const float t_state = block_sum(tcs, red);
  const int nsd = static_cast<int>((PN + 255) / 256);  // the pass's blocks
  float sd = 0.0f;
  for (int b = i; b < nsd; b += blockDim.x) sd += k.b.sdp[ch * nsd + b];
  sd = block_sum(sd, red);
  float dcs = ok ? inter + rowR - dti * colR - tcs : 0.0f;
  if (i == v.len - 1) dcs += t_state + __expf(last) * sd;
  const float cum = block_scan(dti, tot);
  // Σ_{k >= i} dcs_k: a prefix sum over the reversed rows.
  buf[i] = dcs;
  __syncthreads();
  const float rev = block_scan(buf[kMaxQ - 1 - i], tot);
  __syncthreads();
  buf[kMaxQ - 1 - i] = rev;
  __syncthreads();
  if (ok) ddt[static_cast<int64_t>(v.start + i) * k.d.H + v.h] = colR + decay * u + k.in.A[v.h] * buf[i];
  const float dA = block_sum(dcs * cum, red);
  float dD = 0.0f;  // the dx tiles of this chunk (j-tiles below len)
  for (int e = i; e < tiles(v.len) * k.pt; e += blockDim.x) dD += k.b.dDt[ch * k.qt * k.pt + e];
  dD = block_sum(dD, red);
  if (i == 0) {
    k.b.dAc[ch] = dA;
    k.b.dDc[ch] = dD;
  }
}

struct Sizes {
  int64_t prep, dS, dcb, col, row, u, inter, dDt, sdp, dAc, dDc, dBp, dCp, cbt, c_t, b_r;
  int64_t total() const {
    return prep + dS + dcb + col + row + u + inter + dDt + sdp + dAc + dDc + dBp + dCp + cbt + c_t + b_r;
  }
};

bool tc_supported(const SsdDims& d, int32_t Q) {
  return bwd_tc::bc_supported(d, Q) && bwd_tc::dx_supported(d, Q) && bwd_tc::dcb_supported(d, Q) &&
         bwd_tc::u_supported(d, Q);
}

// use_tc: the scratch of the tc path only (no per-head dCB, no per-head dB/dC partials: ~1 GB less at
// 1.3B x 8192 tokens); otherwise the tiles path's, which holds the tc path's too.
Sizes sizes(int64_t T, int64_t chunks, int64_t Q, const SsdDims& d, bool use_tc) {
  const int64_t ch = chunks * d.H, qt = tiles(Q), pt = tiles(d.P), nt = tiles(d.N);
  const int64_t nsd = (static_cast<int64_t>(d.P) * d.N + 255) / 256;
  // dcb: per head without tc, the tc path's splits and head sums (ssd_backward_dcb_tc.h) with it.
  const int64_t dcb_tc = bwd_tc::dcb_floats(chunks, static_cast<int32_t>(Q), d);
  const int64_t dcb = use_tc ? dcb_tc : std::max(ch * Q * Q, dcb_tc), partial = use_tc ? 0 : T * d.H * d.N;
  const int64_t ni = std::max(nt, static_cast<int64_t>(bwd_tc::bc_inter_slots(d)));
  return {ssd_chunked_scratch_floats(chunks, Q, d), ch * d.P * d.N, dcb, ch * qt * Q, ch * qt * Q,
          ch * pt * Q, ch * ni * Q, ch * qt * pt, ch * nsd, ch, ch, partial, partial,
          chunks * d.G * Q * Q, chunks * d.G * d.N * Q, T * d.G * d.N + 12};  // + 12: aligned starts
}

template <class Acc>
void launch_tiles(const Ctx& k, float* ddt, float* dstate0, int32_t seqs, bool tc, cudaStream_t s) {
  const unsigned ch = static_cast<unsigned>(k.ct.count) * k.d.H, qt = k.qt, pt = k.pt, nt = k.nt;
  if (tc) {  // same output from one block per (chunk, head) on mma.sync (ssd_backward_u_tc.cu)
    bwd_tc::u_product({k.b.c_t, k.dy, k.b.f.cs, k.b.dS, k.d, k.ct}, s);
  } else {
    dstate_local_kernel<Acc><<<dim3(nt, pt, ch), kThreads, 0, s>>>(k);
    PCM_CUDA_LAUNCH();
  }
  dstate_pass_kernel<<<dim3(blocks_for(static_cast<int64_t>(k.d.P) * k.d.N, 256), k.d.H, seqs), 256, 0, s>>>(
      k, dstate0, tc);
  PCM_CUDA_LAUNCH();
  if (tc) {  // same outputs on mma.sync: dcb, dB/dC per (tile, chunk, group[, split]); dx, U per (chunk, head)
    bwd_tc::dcb_product({k.in.xbc, k.in.stride, k.in.dt, k.dy, k.b.f.cs, k.b.f.cb, k.b.dcb, k.b.col, k.b.row, k.qt,
                         k.d, k.ct},
                        s);
    bwd_tc::dx_product({k.in.xbc, k.in.stride, k.in.dt, k.in.D, k.dy, k.b.f.cs, k.b.cbt, k.b.dS, k.b.b_r,
                        static_cast<int64_t>(k.d.G) * k.d.N, k.dx, k.dx_stride, k.b.u, k.b.dDt, k.qt, k.bf16, k.d,
                        k.ct},
                       s);
    const float* sum = bwd_tc::dcb_sum(k.b.dcb, k.ct.count, k.ct.Q, k.d);
    const float* sum_t = bwd_tc::dcb_sum_t(k.b.dcb, k.ct.count, k.ct.Q, k.d);
    bwd_tc::bc_product({k.in.xbc, k.in.stride, k.in.dt, k.dy, k.b.f.cs, k.b.f.states, k.b.dS, sum, sum_t, k.b.inter,
                        k.ni, k.dx, k.dx_stride, k.d, k.ct},
                       s);
  } else {
    dcb_kernel<Acc><<<dim3(qt, qt, ch), kThreads, 0, s>>>(k);
    PCM_CUDA_LAUNCH();
    dx_kernel<Acc><<<dim3(pt, qt, ch), kThreads, 0, s>>>(k);
    PCM_CUDA_LAUNCH();
    dbc_kernel<Acc, true><<<dim3(nt, qt, ch), kThreads, 0, s>>>(k);
    PCM_CUDA_LAUNCH();
    dbc_kernel<Acc, false><<<dim3(nt, qt, ch), kThreads, 0, s>>>(k);
    PCM_CUDA_LAUNCH();
  }
  scalars_kernel<<<ch, kMaxQ, 0, s>>>(k, ddt);
  PCM_CUDA_LAUNCH();
}

}  // namespace

bool ssd_chunked_backward_takes_saved(const SsdDims& d, int32_t Q, bool tf32, bool tc) {
  return tf32 && tc && tc_supported(d, Q);
}

int64_t ssd_chunked_backward_scratch_floats(int64_t T, int64_t chunks, int32_t Q, const SsdDims& d, bool tf32,
                                            bool tc) {
  return sizes(T, chunks, Q, d, tf32 && tc && tc_supported(d, Q)).total();
}

void ssd_chunked_backward(const SsdTrainGrads& g, const float* dy, const SsdTrainIn& in, const float* state0,
                          float* dstate0, const SsdDims& d, const ChunkTable& ct, int32_t seqs, int64_t T,
                          float* scratch, bool tf32, cudaStream_t s, bool tc, bool bf16) {
  PCM_CHECK(d.G > 0 && d.H % d.G == 0, "CUDA SSD backward: {} heads do not split into {} groups", d.H, d.G);
  PCM_CHECK(ct.Q > 0 && ct.Q <= kMaxQ, "CUDA SSD backward: chunk size {} not supported (at most {})", ct.Q, kMaxQ);
  if (ct.count == 0) return;
  PCM_CHECK(static_cast<int64_t>(ct.count) * d.H <= 65535, "CUDA SSD backward: {} chunks x {} heads exceed a grid",
            ct.count, d.H);
  Ctx k;
  k.in = SsdIn{in.xbc, in.stride, in.dt, in.A, in.D};
  k.dy = dy;
  k.dx = g.dxbc;
  k.dx_stride = g.stride;
  k.d = d;
  k.ct = ct;
  k.qt = tiles(ct.Q);
  k.pt = tiles(d.P);
  k.nt = tiles(d.N);
  Bwd& b = k.b;
  const bool use_tc = tf32 && tc && tc_supported(d, ct.Q);
  const Sizes z = sizes(T, ct.count, ct.Q, d, use_tc);  // what ssd_chunked_backward_scratch_floats(.., tf32, tc) gave
  k.ni = use_tc ? bwd_tc::bc_inter_slots(d) : k.nt;
  k.bf16 = use_tc && bf16;
  // With tc the recomputed entering states are stored rounded to TF32, as dC takes them (<dS, S0> in the pass then sums
  // the rounded values: a change of ~2^-12 relative per term); the forward's saved ones come unrounded.
  // The tc kernels' operands prepared once per layer at the scratch's end (16-byte aligned; scratch is 4-byte):
  // C·Bᵀ transposed (by the recompute's cb kernel), each chunk's C transposed and rounded (U), B rounded (dX).
  const int64_t gn = static_cast<int64_t>(d.G) * d.N, hp = static_cast<int64_t>(d.H) * d.P;
  auto align16 = [](float* p) { return p + (4 - (reinterpret_cast<uintptr_t>(p) / sizeof(float)) % 4) % 4; };
  float* cbt = align16(scratch + (z.total() - z.b_r - z.c_t - z.cbt));
  float* c_t = align16(cbt + z.cbt);
  float* b_r = align16(c_t + z.c_t);
  if (use_tc) {
    round_cols_kernel<<<blocks_for(T * gn, 256), 256, 0, s>>>(b_r, k.in.xbc, k.in.stride, hp, T, static_cast<int>(gn));
    PCM_CUDA_LAUNCH();
    ssd_chunk_transpose(c_t, k.in, hp + gn, d, ct, s);
  }
  // The forward's cumsum and entering states where it kept them (training without recomputation: 213 µs a layer of
  // 1.3B on an H100 not spent on the chunk states, their pass and the cumsum again), else all of them recomputed.
  const bool saved = use_tc && in.saved_cs && in.saved_states && !state0;
  if (saved) {
    if (in.saved_cb) {  // the forward's C·Bᵀ (bf16 training: from the bf16 B, C it ran on), transposed for dX
      b.f.cb = const_cast<float*>(in.saved_cb);
      ssd_chunk_cb_transpose(cbt, in.saved_cb, d, ct, s);
    } else {
      b.f = ssd_chunk_cb(scratch, k.in, d, ct, cbt, s);
    }
    b.f.cs = const_cast<float*>(in.saved_cs);
    b.f.states = const_cast<float*>(in.saved_states);
  } else {
    b.f = ssd_chunk_states(scratch, k.in, state0, d, ct, seqs, tf32, s, use_tc, use_tc ? cbt : nullptr);
  }
  b.dS = scratch + z.prep;
  b.dcb = b.dS + z.dS;
  b.col = b.dcb + z.dcb;
  b.row = b.col + z.col;
  b.u = b.row + z.row;
  b.inter = b.u + z.u;
  b.dDt = b.inter + z.inter;
  b.sdp = b.dDt + z.dDt;
  b.dAc = b.sdp + z.sdp;
  b.dDc = b.dAc + z.dAc;
  b.dBp = b.dDc + z.dDc;
  b.dCp = b.dBp + z.dBp;
  b.cbt = cbt;
  b.b_r = b_r;
  b.c_t = c_t;
  if (tf32)
    launch_tiles<TensorAcc>(k, g.ddt, dstate0, seqs, use_tc, s);
  else
    launch_tiles<SimtAcc>(k, g.ddt, dstate0, seqs, false, s);
  if (!use_tc) {  // the tc dB and dC are per group already, written into dxbc
    group_sum_kernel<<<blocks_for(T * d.G * d.N, 256), 256, 0, s>>>(g.dxbc, g.stride, b.dBp, b.dCp, T, d.H, d.G,
                                                                    d.P, d.N);
    PCM_CUDA_LAUNCH();
  }
  head_sum_kernel<<<blocks_for(d.H, 128), 128, 0, s>>>(g.dA, g.dD, b.dAc, b.dDc, ct.count, d.H);
  PCM_CUDA_LAUNCH();
}

}  // namespace pcm::cuda
