// C·Bᵀ of the SSD prefill on the TF32 tensor cores (mma.sync m16n8k8, fp32 accumulation), for states of N = 128:
// CB[c, g, i, j] = Σ_n C[i, n] B[j, n] over the 64-tiles with j-tile <= i-tile, rows and columns past the chunk's
// length 0 (what ssd.cu's cb_kernel writes). One block of 8 warps per (chunk, group, 64-row tile): the warp's 16 rows
// of C stay in registers as A fragments for every k (C and B are both [row][n], so with the lanes' k order 4t..4t+3
// an A fragment and a B fragment are each one 16-byte load); B goes through shared memory one 64-row tile at a time,
// two cp.async buffers. Why: the generic 64x64 WMMA tiles spent ~5x the kernel's bytes in slab loads between
// barriers (bench/cuda_notes.md, prefill v11).
#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/cuda/cp_async.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/mma_bf16.cuh"
#include "kernels/cuda/mma_tf32.cuh"
#include "kernels/cuda/ssd_prefill_tc.h"

namespace pcm::cuda::tc {
namespace {

constexpr int kN = 128, kT = 64, kThreads = 256;

using mma_tf32::load4;
using mma_tf32::mma;
using mma_tf32::rna_bits;
using mma_tf32::to_tf32;

// B rows in shared memory unpadded: a fragment load's 8-lane phase reads rows j, j + 1 at the same 16 floats;
// XOR-ing odd rows' columns with 16 puts the two rows in different bank halves (16-byte pieces stay whole).
__device__ __forceinline__ int swz_cb(int j) { return 16 * (j & 1); }

__global__ void __launch_bounds__(kThreads, 2) cb_tc_kernel(float* cb, SsdIn in, SsdDims d, ChunkTable ct) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  float* bsm = reinterpret_cast<float*>(smem_raw);  // [2][kT rows j][kN]
  const int Q = ct.Q, qt = (Q + kT - 1) / kT;
  const int it = qt - 1 - static_cast<int>(blockIdx.x % qt);  // the longest row tiles (most column tiles) first
  const int cg = static_cast<int>(blockIdx.x / qt), c = cg / d.G, g = cg % d.G;
  const int start = ct.chunk_start[c], len = ct.chunk_len[c];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gq = lane >> 2, tq = lane & 3;
  const float* Bg = in.xbc + static_cast<int64_t>(d.H) * d.P + static_cast<int64_t>(g) * kN;
  const float* Cg = Bg + static_cast<int64_t>(d.G) * kN;
  auto issue = [&](int jt) {  // B rows of column tile jt; one commit group per call (empty past the last)
    if (jt <= it) {
      float* dst = bsm + (jt & 1) * kT * kN;
      for (int e = tid; e < kT * kN / 4; e += kThreads) {
        const int r = e / (kN / 4), col = 4 * (e % (kN / 4)), j = kT * jt + r;
        const bool ok = j < len;
        cp_async::copy16(dst + r * kN + (col ^ swz_cb(r)), Bg + static_cast<int64_t>(start + (ok ? j : 0)) * in.stride + col,
                   ok);
      }
    }
    cp_async::commit();
  };
  issue(0);
  // A fragments: rows r0, r1 of C, k = 16 ks + 4 t + u (u = 0, 1: first mma; 2, 3: second), TF32.
  const int r0 = kT * it + 16 * (warp & 3) + gq, r1 = r0 + 8;
  uint32_t a[8][8];
#pragma unroll
  for (int ks = 0; ks < 8; ++ks) {
    const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    const float4 u0 = r0 < len ? load4(Cg + static_cast<int64_t>(start + r0) * in.stride + 16 * ks + 4 * tq, true) : zero;
    const float4 u1 = r1 < len ? load4(Cg + static_cast<int64_t>(start + r1) * in.stride + 16 * ks + 4 * tq, true) : zero;
    const float v[8] = {u0.x, u1.x, u0.y, u1.y, u0.z, u1.z, u0.w, u1.w};
#pragma unroll
    for (int q = 0; q < 8; ++q) a[ks][q] = to_tf32(v[q]);
  }
  float* out = cb + (static_cast<int64_t>(c) * d.G + g) * Q * Q;
  const int cn0 = 32 * (warp >> 2);  // the warp's 32 columns of each tile
  for (int jt = 0; jt <= it; ++jt) {
    cp_async::wait_group<0>();  // tile jt (this thread's copies)
    __syncthreads();     // tile jt visible to all; every warp is done with tile jt - 1's buffer
    issue(jt + 1);
    const float* bs = bsm + (jt & 1) * kT * kN;
    float acc[4][4] = {};
#pragma unroll
    for (int nt = 0; nt < 4; ++nt)
#pragma unroll
      for (int ks = 0; ks < 8; ++ks) {
        const int j = cn0 + 8 * nt + gq;
        const float4 b = *reinterpret_cast<const float4*>(bs + j * kN + ((16 * ks + 4 * tq) ^ swz_cb(j)));
        mma(acc[nt], a[ks][0], a[ks][1], a[ks][2], a[ks][3], rna_bits(b.x), rna_bits(b.y));
        mma(acc[nt], a[ks][4], a[ks][5], a[ks][6], a[ks][7], rna_bits(b.z), rna_bits(b.w));
      }
#pragma unroll
    for (int nt = 0; nt < 4; ++nt) {
      const int j = kT * jt + cn0 + 8 * nt + 2 * tq;  // Q % 16 == 0: j < Q covers j + 1
      if (j >= Q) continue;
      if (r0 < Q) *reinterpret_cast<float2*>(out + static_cast<int64_t>(r0) * Q + j) = make_float2(acc[nt][0], acc[nt][1]);
      if (r1 < Q) *reinterpret_cast<float2*>(out + static_cast<int64_t>(r1) * Q + j) = make_float2(acc[nt][2], acc[nt][3]);
    }
  }
}

// The same from bf16 B and C (SsdIn::xbc_bf16, bf16 models) on bf16 mma.sync m16n8k16: half the bytes read, and the
// conv then writes no fp32 B, C at all. The sum over n is order-free, so each lane takes n in 16-byte runs: for the
// k-step pair kp, lane t holds n = 32 kp + 8 t .. + 7, the first four for k-step 2 kp (as logical k 2t, 2t + 1, 2t + 8,
// 2t + 9 of the fragment), the last four for 2 kp + 1; A (C rows) and B (B rows) fragments are then one 16-byte load
// per row and pair. B rows in shared memory: odd rows' 16-byte pieces XOR 4 (64 bytes), so the two rows of an 8-lane
// phase fall in different banks.
__device__ __forceinline__ int swz_cb16(int j) { return 4 * (j & 1); }

__global__ void __launch_bounds__(kThreads, 2) cb_bf16_kernel(float* cb, SsdIn in, SsdDims d, ChunkTable ct) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  uint4* bsm = reinterpret_cast<uint4*>(smem_raw);  // [2][kT rows j][kN / 8 pieces of 16 bytes]
  constexpr int kPieces = kN / 8;
  const int Q = ct.Q, qt = (Q + kT - 1) / kT;
  const int it = qt - 1 - static_cast<int>(blockIdx.x % qt);  // the longest row tiles (most column tiles) first
  const int cg = static_cast<int>(blockIdx.x / qt), c = cg / d.G, g = cg % d.G;
  const int start = ct.chunk_start[c], len = ct.chunk_len[c];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gq = lane >> 2, tq = lane & 3;
  const __nv_bfloat16* Bg = static_cast<const __nv_bfloat16*>(in.xbc_bf16) + static_cast<int64_t>(d.H) * d.P +
                            static_cast<int64_t>(g) * kN;
  const __nv_bfloat16* Cg = Bg + static_cast<int64_t>(d.G) * kN;
  const int64_t ld = in.bf16_stride;
  auto issue = [&](int jt) {  // B rows of column tile jt; one commit group per call (empty past the last)
    if (jt <= it) {
      uint4* dst = bsm + (jt & 1) * kT * kPieces;
      for (int e = tid; e < kT * kPieces; e += kThreads) {
        const int r = e / kPieces, piece = e % kPieces, j = kT * jt + r;
        const bool ok = j < len;
        cp_async::copy16(reinterpret_cast<float*>(dst + r * kPieces + (piece ^ swz_cb16(r))),
                         reinterpret_cast<const float*>(Bg + static_cast<int64_t>(start + (ok ? j : 0)) * ld + 8 * piece),
                         ok);
      }
    }
    cp_async::commit();
  };
  issue(0);
  // A fragments: rows r0, r1 of C, pair kp: a[kp][row] = n 32 kp + 8 tq .. + 7
  const int r0 = kT * it + 16 * (warp & 3) + gq, r1 = r0 + 8;
  uint4 a[4][2];
#pragma unroll
  for (int kp = 0; kp < 4; ++kp) {
    const uint4 zero = make_uint4(0, 0, 0, 0);
    a[kp][0] = r0 < len ? *reinterpret_cast<const uint4*>(Cg + static_cast<int64_t>(start + r0) * ld + 32 * kp + 8 * tq)
                        : zero;
    a[kp][1] = r1 < len ? *reinterpret_cast<const uint4*>(Cg + static_cast<int64_t>(start + r1) * ld + 32 * kp + 8 * tq)
                        : zero;
  }
  float* out = cb + (static_cast<int64_t>(c) * d.G + g) * Q * Q;
  const int cn0 = 32 * (warp >> 2);  // the warp's 32 columns of each tile
  for (int jt = 0; jt <= it; ++jt) {
    cp_async::wait_group<0>();  // tile jt (this thread's copies)
    __syncthreads();            // tile jt visible to all; every warp is done with tile jt - 1's buffer
    issue(jt + 1);
    const uint4* bs = bsm + (jt & 1) * kT * kPieces;
    float acc[4][4] = {};
#pragma unroll
    for (int nt = 0; nt < 4; ++nt)
#pragma unroll
      for (int kp = 0; kp < 4; ++kp) {
        const int j = cn0 + 8 * nt + gq;
        const uint4 b = bs[j * kPieces + ((4 * kp + tq) ^ swz_cb16(j))];
        const uint32_t a0[4] = {a[kp][0].x, a[kp][1].x, a[kp][0].y, a[kp][1].y};
        const uint32_t a1[4] = {a[kp][0].z, a[kp][1].z, a[kp][0].w, a[kp][1].w};
        mma_bf16::mma(acc[nt], a0, b.x, b.y);
        mma_bf16::mma(acc[nt], a1, b.z, b.w);
      }
#pragma unroll
    for (int nt = 0; nt < 4; ++nt) {
      const int j = kT * jt + cn0 + 8 * nt + 2 * tq;  // Q % 16 == 0: j < Q covers j + 1
      if (j >= Q) continue;
      if (r0 < Q) *reinterpret_cast<float2*>(out + static_cast<int64_t>(r0) * Q + j) = make_float2(acc[nt][0], acc[nt][1]);
      if (r1 < Q) *reinterpret_cast<float2*>(out + static_cast<int64_t>(r1) * Q + j) = make_float2(acc[nt][2], acc[nt][3]);
    }
  }
}

}  // namespace

void cb_product(float* cb, const SsdIn& in, const SsdDims& d, const ChunkTable& ct, cudaStream_t s) {
  const unsigned blocks = static_cast<unsigned>(ct.count) * d.G * ((ct.Q + kT - 1) / kT);
  if (in.xbc_bf16) {
    constexpr int smem = 2 * kT * kN * sizeof(__nv_bfloat16);
    cb_bf16_kernel<<<blocks, kThreads, smem, s>>>(cb, in, d, ct);
  } else {
    constexpr int smem = 2 * kT * kN * sizeof(float);
    mma_tf32::allow_smem(cb_tc_kernel, smem);
    cb_tc_kernel<<<blocks, kThreads, smem, s>>>(cb, in, d, ct);
  }
  PCM_CUDA_LAUNCH();
}

}  // namespace pcm::cuda::tc
