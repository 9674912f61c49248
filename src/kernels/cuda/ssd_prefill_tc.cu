// Chunk states and chunk outputs of the SSD prefill on the TF32 tensor cores (mma.sync m16n8k8, fp32
// accumulation), one block of 8 warps per (chunk, head). The operands that every warp needs (x, the chunk's
// B or S_enter) are copied into shared memory once with cp.async and rounded to TF32 there; the operands
// private to a warp's rows (C, CB) go from device memory straight into its fragments, 16 bytes per lane.
// Why this shape: the generic 64x64 tiles in ssd.cu re-read every operand per tile and spent most of their
// time in 32-deep slab loads between barriers (bench/cuda_notes.md, prefill v9).
#include "kernels/cuda/ssd_prefill_tc.h"

#include <cstdint>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/mma_tf32.cuh"
#include "kernels/cuda/ssd_chunk_terms.cuh"
#include "kernels/cuda/ssd_state_pass.cuh"

namespace pcm::cuda::tc {
namespace {

constexpr int kP = 64, kN = 128, kQmax = 256, kThreads = 256;

using mma_tf32::allow_smem;
using mma_tf32::bits;
using mma_tf32::mma;
using mma_tf32::rna_bits;
using mma_tf32::round_tf32;
using mma_tf32::to_tf32;

// 16 bytes global -> shared without registers; valid false writes zeros (nothing is read).
__device__ __forceinline__ void cp_async16(float* dst, const float* src, bool valid) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(s), "l"(src), "r"(valid ? 16 : 0) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int n>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(n) : "memory");
}

__device__ __forceinline__ void round_tf32_inplace(float* p) {
  float4 v = *reinterpret_cast<float4*>(p);
  v = make_float4(round_tf32(v.x), round_tf32(v.y), round_tf32(v.z), round_tf32(v.w));
  *reinterpret_cast<float4*>(p) = v;
}

__device__ __forceinline__ float4 ldg4(const float* p) { return __ldg(reinterpret_cast<const float4*>(p)); }

// ---- chunk states ----------------------------------------------------------------------------------------
// Warp w owns states rows p in [16 (w % 4), +16) and columns n in [64 (w / 4), +64); the sum over the chunk's
// rows j runs through shared memory in slabs of 64 rows, two buffers: slab s + 1's copies land while slab s
// multiplies, one barrier per slab. The slabs stay as copied (fp32): the fragments are scaled by w_j and rounded
// to TF32 in registers (the same values as rounding in shared memory, without a pass over it and its barrier).
constexpr int kSlab = 64;
struct StateSmem {
  float x[2][kSlab * kP];  // x[j][p ^ swz]
  float b[2][kSlab * kN];  // B[j][n ^ swz], or (kBT) Bᵀ[n][16-byte piece of j ^ 4 (n % 2)]
  float w[kQmax];          // exp(cs_last - cs_j) dt_j
};
// A fragment reads rows j = k0 + t (t = lane % 4) at one column: XOR-ing the column with 8 (j % 4) puts the
// four rows in different banks and keeps 16-byte pieces whole. kBT's k order (rows k0 + 4t + u) XORs with
// 8 ((j / 4) % 4) instead.
template <bool kBT>
__device__ __forceinline__ int swz_state(int j) {
  return kBT ? 8 * ((j >> 2) & 3) : 8 * (j & 3);
}

// kBT: B from bt, the chunk's B transposed and rounded to TF32 ([chunks, G, N, Q], 0 past len: the tc backward
// writes it), so that a B fragment (4 consecutive rows j of one column n) is one 16-byte load and needs no
// rounding; the lanes then take k = j in the order 4t..4t+3 per 16 rows. Else B rows from in.xbc, rounded on the
// fragments.
template <bool kBT>
__global__ void __launch_bounds__(kThreads, 2) chunk_states_kernel(float* states, const float* cs, SsdIn in,
                                                                   SsdDims d, ChunkTable ct, const float* bt,
                                                                   StatePass ps) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  StateSmem& sm = *reinterpret_cast<StateSmem*>(smem_raw);
  // chunk-major: c - 1 first (without the pass, ps.sync null: the grid order, local states out)
  const int blk = ps.sync ? state_pass::ticket(ps.sync + static_cast<int64_t>(ct.count) * d.H) : blockIdx.x;
  const int c = blk / d.H, h = blk % d.H, g = h / (d.H / d.G);
  const int start = ct.chunk_start[c], len = ct.chunk_len[c], Q = ct.Q;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gq = lane >> 2, tq = lane & 3;
  const float* xg = in.xbc + static_cast<int64_t>(h) * kP;
  const float* bg = in.xbc + static_cast<int64_t>(d.H) * kP + static_cast<int64_t>(g) * kN;
  const float* btg = kBT ? bt + (static_cast<int64_t>(c) * d.G + g) * kN * Q : nullptr;
  const int slabs = (len + kSlab - 1) / kSlab;
  auto issue = [&](int s) {  // one commit group per call (empty past the last slab) keeps the wait counts fixed
    if (s < slabs) {
      const int buf = s & 1;
      for (int e = tid; e < kSlab * kP / 4; e += kThreads) {
        const int r = e / (kP / 4), col = 4 * (e % (kP / 4)), j = s * kSlab + r;
        const bool ok = j < len;
        cp_async16(&sm.x[buf][r * kP + (col ^ swz_state<kBT>(r))],
                   xg + static_cast<int64_t>(start + (ok ? j : 0)) * in.stride + col, ok);
      }
      if constexpr (kBT) {
        for (int e = tid; e < kN * kSlab / 4; e += kThreads) {  // row n, piece q of 4 rows j
          const int n = e / (kSlab / 4), q = e % (kSlab / 4), j = s * kSlab + 4 * q;
          cp_async16(&sm.b[buf][n * kSlab + 4 * (q ^ (4 * (n & 1)))], btg + static_cast<int64_t>(n) * Q + min(j, Q - 4),
                     j < Q);
        }
      } else {
        for (int e = tid; e < kSlab * kN / 4; e += kThreads) {
          const int r = e / (kN / 4), col = 4 * (e % (kN / 4)), j = s * kSlab + r;
          const bool ok = j < len;
          cp_async16(&sm.b[buf][r * kN + (col ^ swz_state<kBT>(r))],
                     bg + static_cast<int64_t>(start + (ok ? j : 0)) * in.stride + col, ok);
        }
      }
    }
    cp_async_commit();
  };
  issue(0);
  const float cs_last = state_weights(sm.w, cs + (static_cast<int64_t>(c) * d.H + h) * ct.Q,
                                      in.dt + static_cast<int64_t>(start) * d.H + h, d.H, len, slabs * kSlab, tid,
                                      kThreads);
  const int m0 = 16 * (warp & 3), n0 = 64 * (warp >> 2);
  float acc[8][4] = {};
  for (int s = 0; s < slabs; ++s) {
    cp_async_wait<0>();  // slab s (this thread's copies)
    __syncthreads();     // slab s and w visible to all; every warp is done with slab s - 1's buffer
    issue(s + 1);
    const int buf = s & 1;
    const float* xs = sm.x[buf];
    const float* bs = sm.b[buf];
    const float* ws = sm.w + s * kSlab;
    if constexpr (kBT) {
#pragma unroll 2
      for (int k0 = 0; k0 < kSlab; k0 += 16) {  // rows j = k0 + 4t + u: mma 1 takes u = 0, 1, mma 2 u = 2, 3
        const int j4 = k0 + 4 * tq, sw = swz_state<true>(j4);
        const float4 w4 = *reinterpret_cast<const float4*>(ws + j4);
        const float wv[4] = {w4.x, w4.y, w4.z, w4.w};
        uint32_t a0[4], a1[4];
#pragma unroll
        for (int u = 0; u < 4; ++u) {
          a0[u] = rna_bits(wv[u] * xs[(j4 + u) * kP + ((m0 + gq) ^ sw)]);
          a1[u] = rna_bits(wv[u] * xs[(j4 + u) * kP + ((m0 + gq + 8) ^ sw)]);
        }
        float4 bv[8];
#pragma unroll
        for (int nt = 0; nt < 8; ++nt) {
          const int n = n0 + 8 * nt + gq;
          bv[nt] = *reinterpret_cast<const float4*>(bs + n * kSlab + 4 * ((j4 >> 2) ^ (4 * (n & 1))));
          mma(acc[nt], a0[0], a1[0], a0[1], a1[1], bits(bv[nt].x), bits(bv[nt].y));
        }
#pragma unroll
        for (int nt = 0; nt < 8; ++nt) mma(acc[nt], a0[2], a1[2], a0[3], a1[3], bits(bv[nt].z), bits(bv[nt].w));
      }
    } else {
#pragma unroll 2
      for (int k0 = 0; k0 < kSlab; k0 += 8) {
        const int ja = k0 + tq, jb = ja + 4, sw = 8 * tq;  // swz_state(ja) = swz_state(jb) = 8 t
        const float wa = ws[ja], wb = ws[jb];
        const uint32_t a0 = rna_bits(wa * xs[ja * kP + ((m0 + gq) ^ sw)]);
        const uint32_t a1 = rna_bits(wa * xs[ja * kP + ((m0 + gq + 8) ^ sw)]);
        const uint32_t a2 = rna_bits(wb * xs[jb * kP + ((m0 + gq) ^ sw)]);
        const uint32_t a3 = rna_bits(wb * xs[jb * kP + ((m0 + gq + 8) ^ sw)]);
#pragma unroll
        for (int nt = 0; nt < 8; ++nt) {
          const int n = (n0 + 8 * nt + gq) ^ sw;
          mma(acc[nt], a0, a1, a2, a3, rna_bits(bs[ja * kN + n]), rna_bits(bs[jb * kN + n]));
        }
      }
    }
  }
  if (ps.sync) {
    state_pass::hand_on(acc, states, ps, ct, d.H, c, h, __expf(cs_last), m0, n0, gq, tq);
    return;
  }
  float* out = states + (static_cast<int64_t>(c) * d.H + h) * kP * kN;
#pragma unroll
  for (int nt = 0; nt < 8; ++nt) {
    const int n = n0 + 8 * nt + 2 * tq, p = m0 + gq;
    *reinterpret_cast<float2*>(out + p * kN + n) = make_float2(acc[nt][0], acc[nt][1]);
    *reinterpret_cast<float2*>(out + (p + 8) * kN + n) = make_float2(acc[nt][2], acc[nt][3]);
  }
}

// ---- chunk outputs ---------------------------------------------------------------------------------------
// Warp w owns the 16-row tiles w and 15 - w of the chunk (equal causal work per warp), all 64 columns p.
// Inside each k = 16 step the lanes take k in the order 4t..4t+3 (the same for A and B), so an A fragment
// is one 16-byte load per row.
constexpr int kSStride = kN + 16;  // S rows padded: the 8 lanes of a 16-byte load phase (2 rows) hit 32 banks
struct OutSmem {
  float x[kQmax * kP];     // x[j][p ^ swz], TF32
  float s[kP * kSStride];  // S_enter[p][n], TF32
  float cs[kQmax], dt[kQmax];
};
// B fragments read x rows j = 16 kb + 4 t + u at one column: XOR 8 ((j / 4) % 4) spreads the t over banks.
__device__ __forceinline__ int swz_out(int j) { return 8 * ((j >> 2) & 3); }

struct OutCtx {
  const OutSmem& sm;
  const float *Cg, *CBg;
  int64_t stride;
  int start, len, Q, lane;
};

// acc = exp(cs_i) Σ_n C[i, n] S_enter[p, n] for the rows of tile mt.
__device__ __forceinline__ void inter_chunk(float (&acc)[8][4], const OutCtx& o, int mt) {
  const int gq = o.lane >> 2, tq = o.lane & 3, r0 = 16 * mt + gq, r1 = r0 + 8;
  const float* c0 = o.Cg + static_cast<int64_t>(o.start + min(r0, o.len - 1)) * o.stride + 4 * tq;
  const float* c1 = o.Cg + static_cast<int64_t>(o.start + min(r1, o.len - 1)) * o.stride + 4 * tq;
#pragma unroll
  for (int nt = 0; nt < 8; ++nt) acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0.0f;
#pragma unroll
  for (int k0 = 0; k0 < kN; k0 += 16) {
    const float4 u0 = ldg4(c0 + k0), u1 = ldg4(c1 + k0);
    const uint32_t a00 = to_tf32(u0.x), a01 = to_tf32(u1.x), a02 = to_tf32(u0.y), a03 = to_tf32(u1.y);
    const uint32_t a10 = to_tf32(u0.z), a11 = to_tf32(u1.z), a12 = to_tf32(u0.w), a13 = to_tf32(u1.w);
#pragma unroll
    for (int nt = 0; nt < 8; ++nt) {
      const float4 b = *reinterpret_cast<const float4*>(&o.sm.s[(8 * nt + gq) * kSStride + k0 + 4 * tq]);
      mma(acc[nt], a00, a01, a02, a03, bits(b.x), bits(b.y));
      mma(acc[nt], a10, a11, a12, a13, bits(b.z), bits(b.w));
    }
  }
  scale_rows(acc, __expf(o.sm.cs[r0]), __expf(o.sm.cs[r1]));
}

// acc += Σ_{j<=i} CB[i, j] exp(cs_i - cs_j) dt_j x[j, p] for the rows of tile mt.
__device__ __forceinline__ void intra_chunk(float (&acc)[8][4], const OutCtx& o, int mt) {
  const int gq = o.lane >> 2, tq = o.lane & 3, r0 = 16 * mt + gq, r1 = r0 + 8, sw = 8 * tq;
  const float cs0 = o.sm.cs[r0], cs1 = o.sm.cs[r1];
  const float* cb0 = o.CBg + static_cast<int64_t>(r0) * o.Q + 4 * tq;
  const float* cb1 = o.CBg + static_cast<int64_t>(r1) * o.Q + 4 * tq;
  float4 v0 = ldg4(cb0), v1 = ldg4(cb1);
  for (int kb = 0; kb <= mt; ++kb) {
    const float4 u0 = v0, u1 = v1;
    if (kb < mt) {  // next step's CB in flight during this one
      v0 = ldg4(cb0 + 16 * (kb + 1));
      v1 = ldg4(cb1 + 16 * (kb + 1));
    }
    const int jb = 16 * kb + 4 * tq;
    float e0[4], e1[4];
    decayed_cb(u0, u1, o.sm.cs, o.sm.dt, jb, r0, cs0, cs1, e0, e1);
    uint32_t a0[4], a1[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      a0[u] = to_tf32(e0[u]);
      a1[u] = to_tf32(e1[u]);
    }
    const float* xr = &o.sm.x[jb * kP];  // rows jb..jb+3, all with swizzle 8 t
#pragma unroll
    for (int nt = 0; nt < 8; ++nt) {
      const int col = (8 * nt + gq) ^ sw;
      mma(acc[nt], a0[0], a1[0], a0[1], a1[1], bits(xr[col]), bits(xr[kP + col]));
      mma(acc[nt], a0[2], a1[2], a0[3], a1[3], bits(xr[2 * kP + col]), bits(xr[3 * kP + col]));
    }
  }
}

__global__ void __launch_bounds__(kThreads, 2) chunk_output_kernel(float* y, const float* cs, const float* cb,
                                                                   const float* states, SsdIn in, SsdDims d,
                                                                   ChunkTable ct) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  OutSmem& sm = *reinterpret_cast<OutSmem*>(smem_raw);
  const int c = blockIdx.x / d.H, h = blockIdx.x % d.H, g = h / (d.H / d.G);
  const int start = ct.chunk_start[c], len = ct.chunk_len[c], Q = ct.Q;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gq = lane >> 2, tq = lane & 3;
  const int rows = (len + 15) & ~15;  // rows of x the causal product reads (zeros past len)
  const float* Sg = states + (static_cast<int64_t>(c) * d.H + h) * kP * kN;
  for (int e = tid; e < kP * kN / 4; e += kThreads) {
    const int p = e / (kN / 4), col = 4 * (e % (kN / 4));
    cp_async16(&sm.s[p * kSStride + col], Sg + p * kN + col, true);
  }
  cp_async_commit();
  const float* xg = in.xbc + static_cast<int64_t>(h) * kP;
  for (int e = tid; e < rows * (kP / 4); e += kThreads) {
    const int j = e / (kP / 4), col = 4 * (e % (kP / 4));
    const bool ok = j < len;
    cp_async16(&sm.x[j * kP + (col ^ swz_out(j))], xg + static_cast<int64_t>(start + (ok ? j : 0)) * in.stride + col,
               ok);
  }
  cp_async_commit();
  const float* csc = cs + (static_cast<int64_t>(c) * d.H + h) * Q;
  for (int j = tid; j < kQmax; j += kThreads) {
    sm.cs[j] = j < len ? csc[j] : 0.0f;
    sm.dt[j] = j < len ? in.dt[static_cast<int64_t>(start + j) * d.H + h] : 0.0f;
  }
  cp_async_wait<1>();  // S_enter landed; x may still be in flight during the first inter-chunk product
  for (int e = tid; e < kP * kN / 4; e += kThreads) {
    const int p = e / (kN / 4), col = 4 * (e % (kN / 4));
    round_tf32_inplace(&sm.s[p * kSStride + col]);
  }
  __syncthreads();
  const OutCtx o{sm, in.xbc + static_cast<int64_t>(d.H) * kP + static_cast<int64_t>(d.G + g) * kN,
                 cb + (static_cast<int64_t>(c) * d.G + g) * Q * Q, in.stride, start, len, Q, lane};
  const float Dh = in.D[h];
  const int64_t HP = static_cast<int64_t>(d.H) * kP;
  auto store = [&](const float(&acc)[8][4], int mt) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int r = 16 * mt + gq + 8 * half;
      if (r >= len) continue;
      const int64_t t = start + r;
      float* yrow = y + t * HP + static_cast<int64_t>(h) * kP;
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) {
        const int p = 8 * nt + 2 * tq;  // x from shared memory (TF32-rounded: 2^-11 relative on the D term)
        const float2 xv = *reinterpret_cast<const float2*>(&sm.x[r * kP + (p ^ swz_out(r))]);
        *reinterpret_cast<float2*>(yrow + p) =
            make_float2(acc[nt][2 * half] + Dh * xv.x, acc[nt][2 * half + 1] + Dh * xv.y);
      }
    }
  };
  float acc[8][4];
  const int mt0 = warp, mt1 = 15 - warp;
  const bool act0 = 16 * mt0 < len, act1 = 16 * mt1 < len;
  if (act0) inter_chunk(acc, o, mt0);
  cp_async_wait<0>();
  for (int e = tid; e < rows * (kP / 4); e += kThreads) {
    const int j = e / (kP / 4), col = 4 * (e % (kP / 4));
    round_tf32_inplace(&sm.x[j * kP + (col ^ swz_out(j))]);
  }
  __syncthreads();
  if (act0) {
    intra_chunk(acc, o, mt0);
    store(acc, mt0);
  }
  if (act1) {
    inter_chunk(acc, o, mt1);
    intra_chunk(acc, o, mt1);
    store(acc, mt1);
  }
}

}  // namespace

bool ssd_tc_shape_supported(const SsdDims& d, int64_t Q) {
  return d.P == kP && d.N == kN && Q % 16 == 0 && Q <= kQmax;
}

bool ssd_tc_supported(const SsdIn& in, const SsdDims& d, int64_t Q) {
  return ssd_tc_shape_supported(d, Q) && in.stride % 4 == 0 && aligned(in.xbc, 16);
}

void chunk_states(float* states, const float* cs, const SsdIn& in, const SsdDims& d, const ChunkTable& ct,
                  const StatePass& pass, cudaStream_t s, const float* bt) {
  PCM_CHECK(!pass.sync || (pass.seqs > 0 && (pass.slot || !pass.keep_final)),
            "SSD chunk states: the state pass needs its flags, the sequences and (keep_final) a slot state");
  constexpr int smem = sizeof(StateSmem);
  const unsigned blocks = static_cast<unsigned>(ct.count) * d.H;
  if (bt) {
    PCM_CHECK(aligned(bt, 16), "SSD chunk states: the transposed B must be 16-byte aligned");
    allow_smem(chunk_states_kernel<true>, smem);
    chunk_states_kernel<true><<<blocks, kThreads, smem, s>>>(states, cs, in, d, ct, bt, pass);
  } else {
    allow_smem(chunk_states_kernel<false>, smem);
    chunk_states_kernel<false><<<blocks, kThreads, smem, s>>>(states, cs, in, d, ct, nullptr, pass);
  }
  PCM_CUDA_LAUNCH();
}

void chunk_output(float* y, const float* cs, const float* cb, const float* states, const SsdIn& in, const SsdDims& d,
                  const ChunkTable& ct, cudaStream_t s) {
  constexpr int smem = sizeof(OutSmem);
  allow_smem(chunk_output_kernel, smem);
  const unsigned blocks = static_cast<unsigned>(ct.count) * d.H;
  chunk_output_kernel<<<blocks, kThreads, smem, s>>>(y, cs, cb, states, in, d, ct);
  PCM_CUDA_LAUNCH();
}

}  // namespace pcm::cuda::tc
