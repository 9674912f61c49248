// Chunk outputs of the SSD prefill on the bf16 tensor cores (mma.sync m16n8k16, fp32 accumulation), for models run in
// bf16, y written in bf16 (the gated norm reads it so): x and C arrive in bf16 from the conv, so x's rows go into
// shared memory by cp.async in their final form and its B fragments come out of ldmatrix.trans, C's A fragments are
// its stored pairs; C·Bᵀ·decay and S_enter are rounded to bf16 on their way into the fragments (Triton's chunk_scan
// rounds the same operands). Input checks: ssd.cu (check_bf16_inputs). Half the TF32 kernel's
// shared memory (53 KB): more blocks per SM for a kernel that ncu found latency-bound at 2 (bench/cuda_notes.md).
// One block of 8 warps per (chunk, head); warp w owns the 16-row tiles w and 15 - w, all 64 columns p.
#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/cuda/cp_async.cuh"
#include "kernels/cuda/mma_bf16.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/mma_tf32.cuh"
#include "kernels/cuda/ssd_chunk_terms.cuh"
#include "kernels/cuda/ssd_prefill_tc.h"

namespace pcm::cuda::tc {
namespace {

constexpr int kP = 64, kN = 128, kQmax = 256, kThreads = 256;
constexpr int kSStride = kN + 16;  // bf16 per S_enter row (288 bytes): the 8-byte fragment loads are conflict-free

struct OutSmem {
  uint16_t x[kQmax * kP];  // bf16 x[j][16-byte piece c ^ key(j)]; first the fp32 S_enter as copied (32 KB both)
  uint16_t s[kP * kSStride];  // bf16 S_enter[p][n]
  float cs[kQmax], dt[kQmax];
};
static_assert(sizeof(OutSmem::x) == kP * kN * sizeof(float), "S_enter's fp32 copy lands in x's space");

// Within each k = 16 step the lanes take k in the order 4t..4t+3 (logical 2t, 2t+1 -> 4t, 4t+1; 2t+8, 2t+9 -> 4t+2,
// 4t+3), so that an A fragment is 4 consecutive floats of a row. The ldmatrix row of logical k = 8 h + r is then
// physical 4 (r / 2) + 2 h + r % 2; the 8 rows of one matrix get 8 different keys, so its 16-byte pieces sit in
// different banks.
__device__ __forceinline__ int key(int j) { return (j & 1) | ((j >> 1) & 6); }
__device__ __forceinline__ int phys_row(int r, int h) { return 4 * (r >> 1) + 2 * h + (r & 1); }

using mma_bf16::ldmatrix_x4_trans;
using mma_bf16::mma;
using mma_bf16::pack_bf16x2;
using mma_tf32::load4;

struct OutCtx {
  const OutSmem& sm;
  const uint16_t* Cg;  // bf16 C of the group (row stride `stride`)
  const float* CBg;
  int64_t stride;
  int start, len, Q, lane;
};

// acc = exp(cs_i) Σ_n C[i, n] S_enter[p, n] for the rows of tile mt.
__device__ __forceinline__ void inter_chunk(float (&acc)[8][4], const OutCtx& o, int mt) {
  const int gq = o.lane >> 2, tq = o.lane & 3, r0 = 16 * mt + gq, r1 = r0 + 8;
  const uint16_t* c0 = o.Cg + (o.start + min(r0, o.len - 1)) * o.stride + 4 * tq;
  const uint16_t* c1 = o.Cg + (o.start + min(r1, o.len - 1)) * o.stride + 4 * tq;
#pragma unroll
  for (int nt = 0; nt < 8; ++nt) acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0.0f;
#pragma unroll 2
  for (int k0 = 0; k0 < kN; k0 += 16) {  // 4 bf16 of a row = the fragment's two pairs, as stored
    const uint2 v0 = __ldg(reinterpret_cast<const uint2*>(c0 + k0));
    const uint2 v1 = __ldg(reinterpret_cast<const uint2*>(c1 + k0));
    const uint32_t a[4] = {v0.x, v1.x, v0.y, v1.y};
#pragma unroll
    for (int nt = 0; nt < 8; ++nt) {
      const uint2 b = *reinterpret_cast<const uint2*>(&o.sm.s[(8 * nt + gq) * kSStride + k0 + 4 * tq]);
      mma(acc[nt], a, b.x, b.y);
    }
  }
  scale_rows(acc, __expf(o.sm.cs[r0]), __expf(o.sm.cs[r1]));
}

// acc += Σ_{j<=i} CB[i, j] exp(cs_i - cs_j) dt_j x[j, p] for the rows of tile mt.
__device__ __forceinline__ void intra_chunk(float (&acc)[8][4], const OutCtx& o, int mt) {
  const int gq = o.lane >> 2, tq = o.lane & 3, r0 = 16 * mt + gq, r1 = r0 + 8;
  const float cs0 = o.sm.cs[r0], cs1 = o.sm.cs[r1];
  const float* cb0 = o.CBg + static_cast<int64_t>(r0) * o.Q + 4 * tq;
  const float* cb1 = o.CBg + static_cast<int64_t>(r1) * o.Q + 4 * tq;
  // This lane's ldmatrix row: matrix m = lane / 8 (k-half m % 2, column half m / 2), row lane % 8.
  const int lm = o.lane >> 3, lrow = phys_row(o.lane & 7, lm & 1), lcol = lm >> 1;
  float4 v0 = load4(cb0, true), v1 = load4(cb1, true);
  for (int kb = 0; kb <= mt; ++kb) {
    const float4 u0 = v0, u1 = v1;
    if (kb < mt) {  // next step's CB in flight during this one
      v0 = load4(cb0 + 16 * (kb + 1), true);
      v1 = load4(cb1 + 16 * (kb + 1), true);
    }
    float e0[4], e1[4];
    decayed_cb(u0, u1, o.sm.cs, o.sm.dt, 16 * kb + 4 * tq, r0, cs0, cs1, e0, e1);
    const uint32_t a[4] = {pack_bf16x2(e0[0], e0[1]), pack_bf16x2(e1[0], e1[1]), pack_bf16x2(e0[2], e0[3]),
                           pack_bf16x2(e1[2], e1[3])};
    const int j = 16 * kb + lrow;
#pragma unroll
    for (int np = 0; np < 4; ++np) {  // columns 16 np .. 16 np + 15: two n-tiles per ldmatrix
      uint32_t b[4];
      ldmatrix_x4_trans(b, &o.sm.x[j * kP + 8 * ((2 * np + lcol) ^ key(j))]);
      mma(acc[2 * np], a, b[0], b[1]);
      mma(acc[2 * np + 1], a, b[2], b[3]);
    }
  }
}

// Y: y's type (uint16_t: bf16 for the gated norm of inference; float: training keeps y for its backward).
template <class Y>
__global__ void __launch_bounds__(kThreads, 3) chunk_output_bf16_kernel(Y* y, const float* cs, const float* cb,
                                                                        const float* states, SsdIn in, SsdDims d,
                                                                        ChunkTable ct) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  OutSmem& sm = *reinterpret_cast<OutSmem*>(smem_raw);
  const int c = blockIdx.x / d.H, h = blockIdx.x % d.H, g = h / (d.H / d.G);
  const int start = ct.chunk_start[c], len = ct.chunk_len[c], Q = ct.Q;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gq = lane >> 2, tq = lane & 3;
  const int rows = (len + 15) & ~15;  // rows of x the causal product reads (zeros past len)
  // S_enter (fp32) lands in x's space, is rounded into its bf16 rows, then x's copies reuse the space.
  float* s32 = reinterpret_cast<float*>(sm.x);
  const float* Sg = states + (static_cast<int64_t>(c) * d.H + h) * kP * kN;
  for (int e = tid; e < kP * kN / 4; e += kThreads) cp_async::copy16(s32 + 4 * e, Sg + 4 * e, true);
  cp_async::commit();
  const float* csc = cs + (static_cast<int64_t>(c) * d.H + h) * Q;
  for (int j = tid; j < kQmax; j += kThreads) {
    sm.cs[j] = j < len ? csc[j] : 0.0f;
    sm.dt[j] = j < len ? in.dt[static_cast<int64_t>(start + j) * d.H + h] : 0.0f;
  }
  cp_async::wait_group<0>();
  __syncthreads();
  for (int e = tid; e < kP * kN / 4; e += kThreads) {
    const float4 v = *reinterpret_cast<const float4*>(s32 + 4 * e);
    const int p = e / (kN / 4), n = 4 * (e % (kN / 4));
    *reinterpret_cast<uint2*>(&sm.s[p * kSStride + n]) = pack_bf16x4(v);
  }
  __syncthreads();  // S_enter read out of x's space before x's copies land there
  const uint16_t* xbc16 = static_cast<const uint16_t*>(in.xbc_bf16);
  const uint16_t* xg = xbc16 + static_cast<int64_t>(h) * kP;
  for (int e = tid; e < rows * (kP / 8); e += kThreads) {
    const int j = e / (kP / 8), piece = e % (kP / 8);
    const bool ok = j < len;
    cp_async::copy16(reinterpret_cast<float*>(&sm.x[j * kP + 8 * (piece ^ key(j))]),
                     reinterpret_cast<const float*>(xg + (start + (ok ? j : 0)) * in.bf16_stride + 8 * piece), ok);
  }
  cp_async::commit();
  const OutCtx o{sm, xbc16 + static_cast<int64_t>(d.H) * kP + static_cast<int64_t>(d.G + g) * kN,
                 cb + (static_cast<int64_t>(c) * d.G + g) * Q * Q, in.bf16_stride, start, len, Q, lane};
  const float Dh = in.D[h];
  const int64_t HP = static_cast<int64_t>(d.H) * kP;
  auto store = [&](const float(&acc)[8][4], int mt) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int r = 16 * mt + gq + 8 * half;
      if (r >= len) continue;
      Y* yrow = y + (start + static_cast<int64_t>(r)) * HP + h * kP;
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) {  // D x from the bf16 x (as Triton's chunk_scan with bf16 x)
        const __nv_bfloat162 xv =
            *reinterpret_cast<const __nv_bfloat162*>(&sm.x[r * kP + 8 * (nt ^ key(r)) + 2 * tq]);
        const float2 xf = __bfloat1622float2(xv);
        const float v0 = acc[nt][2 * half] + Dh * xf.x, v1 = acc[nt][2 * half + 1] + Dh * xf.y;
        if constexpr (sizeof(Y) == 2)
          *reinterpret_cast<uint32_t*>(yrow + 8 * nt + 2 * tq) = pack_bf16x2(v0, v1);
        else
          *reinterpret_cast<float2*>(yrow + 8 * nt + 2 * tq) = make_float2(v0, v1);
      }
    }
  };
  float acc[8][4];
  const int mt0 = warp, mt1 = 15 - warp;
  const bool act0 = 16 * mt0 < len, act1 = 16 * mt1 < len;
  if (act0) inter_chunk(acc, o, mt0);  // x's copies in flight meanwhile
  cp_async::wait_group<0>();
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

void chunk_output_bf16(float* y, const float* cs, const float* cb, const float* states, const SsdIn& in,
                       const SsdDims& d, const ChunkTable& ct, cudaStream_t s) {
  constexpr int smem = sizeof(OutSmem);
  const unsigned blocks = static_cast<unsigned>(ct.count) * d.H;
  if (in.y_fp32) {
    mma_tf32::allow_smem(chunk_output_bf16_kernel<float>, smem);
    chunk_output_bf16_kernel<float><<<blocks, kThreads, smem, s>>>(y, cs, cb, states, in, d, ct);
  } else {
    mma_tf32::allow_smem(chunk_output_bf16_kernel<uint16_t>, smem);
    chunk_output_bf16_kernel<uint16_t>
        <<<blocks, kThreads, smem, s>>>(reinterpret_cast<uint16_t*>(y), cs, cb, states, in, d, ct);
  }
  PCM_CUDA_LAUNCH();
}

}  // namespace pcm::cuda::tc
