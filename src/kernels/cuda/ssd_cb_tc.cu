// C·Bᵀ of the SSD prefill on the tensor cores (mma.sync, fp32 accumulation), for states of N = 128:
// CB[c, g, i, j] = Σ_n C[i, n] B[j, n] over the 64-tiles with j-tile <= i-tile, rows and columns past the chunk's
// length 0 (what ssd.cu's cb_kernel writes). From fp32 B, C (xbc) on TF32 m16n8k8, or from the conv's bf16 copy
// (SsdIn::xbc_bf16, bf16 models: half the bytes, and the conv then writes no fp32 B, C at all) on bf16 m16n8k16.
// One block of 8 warps per (chunk, group, 64-row tile): the warp's 16 rows of C stay in registers as A fragments for
// every k; B goes through shared memory one 64-row tile at a time, two cp.async buffers. The sum over n is order-free,
// so each lane takes n in 16-byte pieces (piece 4 s + t of a row for step s, t = lane % 4): an A and a B fragment are
// each one 16-byte load per row, and each piece feeds two mma (its first and second halves: TF32 k = 4t, 4t+1 then
// 4t+2, 4t+3 of a k = 8 step; bf16 logical k 2t, 2t+1, 2t+8, 2t+9 of a k = 16 step, then the next step's). B rows
// in shared memory: odd rows' pieces XOR 4 (64 bytes), so the two rows of an 8-lane phase fall in different banks.
// Why: the generic 64x64 WMMA tiles spent ~5x the kernel's bytes in slab loads between barriers (bench/cuda_notes.md,
// prefill v11).
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

// What differs between the precisions: how a fragment's 32-bit words become mma operands, and the mma.
template <class E>
struct CbMma;
template <>
struct CbMma<float> {  // TF32: A rounded to nearest-away once, B rounded as it is read (rna_bits)
  __device__ static uint32_t a_word(uint32_t w) { return mma_tf32::to_tf32(__uint_as_float(w)); }
  __device__ static uint32_t b_word(uint32_t w) { return mma_tf32::rna_bits(__uint_as_float(w)); }
  __device__ static void mma(float (&acc)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    mma_tf32::mma(acc, a[0], a[1], a[2], a[3], b0, b1);
  }
};
template <>
struct CbMma<__nv_bfloat16> {  // bf16 pairs as stored
  __device__ static uint32_t a_word(uint32_t w) { return w; }
  __device__ static uint32_t b_word(uint32_t w) { return w; }
  __device__ static void mma(float (&acc)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    mma_bf16::mma(acc, a, b0, b1);
  }
};

__device__ __forceinline__ int swz_cb(int j) { return 4 * (j & 1); }  // in 16-byte pieces

template <class E>
__global__ void __launch_bounds__(kThreads, 2) cb_tc_kernel(float* cb, SsdIn in, SsdDims d, ChunkTable ct) {
  using M = CbMma<E>;
  constexpr int kElems = 16 / sizeof(E), kPieces = kN / kElems, kSteps = kPieces / 4;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  uint4* bsm = reinterpret_cast<uint4*>(smem_raw);  // [2][kT rows j][kPieces]
  const int Q = ct.Q, qt = (Q + kT - 1) / kT;
  const int it = qt - 1 - static_cast<int>(blockIdx.x % qt);  // the longest row tiles (most column tiles) first
  const int cg = static_cast<int>(blockIdx.x / qt), c = cg / d.G, g = cg % d.G;
  const int start = ct.chunk_start[c], len = ct.chunk_len[c];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gq = lane >> 2, tq = lane & 3;
  const E* xbc = sizeof(E) == 4 ? reinterpret_cast<const E*>(in.xbc) : static_cast<const E*>(in.xbc_bf16);
  const int64_t ld = sizeof(E) == 4 ? in.stride : in.bf16_stride;
  const E* Bg = xbc + static_cast<int64_t>(d.H) * d.P + static_cast<int64_t>(g) * kN;
  const E* Cg = Bg + static_cast<int64_t>(d.G) * kN;
  auto issue = [&](int jt) {  // B rows of column tile jt; one commit group per call (empty past the last)
    if (jt <= it) {
      uint4* dst = bsm + (jt & 1) * kT * kPieces;
      for (int e = tid; e < kT * kPieces; e += kThreads) {
        const int r = e / kPieces, piece = e % kPieces, j = kT * jt + r;
        const bool ok = j < len;
        cp_async::copy16(reinterpret_cast<float*>(dst + r * kPieces + (piece ^ swz_cb(r))),
                         reinterpret_cast<const float*>(Bg + static_cast<int64_t>(start + (ok ? j : 0)) * ld +
                                                        kElems * piece),
                         ok);
      }
    }
    cp_async::commit();
  };
  issue(0);
  // A fragments: rows r0, r1 of C, a[s][row] = piece 4 s + tq of the row, as mma words
  const int r0 = kT * it + 16 * (warp & 3) + gq, r1 = r0 + 8;
  uint4 a[kSteps][2];
#pragma unroll
  for (int st = 0; st < kSteps; ++st)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = h ? r1 : r0;
      const uint4 u = r < len ? __ldg(reinterpret_cast<const uint4*>(Cg + static_cast<int64_t>(start + r) * ld +
                                                                     kElems * (4 * st + tq)))
                              : make_uint4(0, 0, 0, 0);
      a[st][h] = make_uint4(M::a_word(u.x), M::a_word(u.y), M::a_word(u.z), M::a_word(u.w));
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
      for (int st = 0; st < kSteps; ++st) {
        const int j = cn0 + 8 * nt + gq;
        const uint4 b = bs[j * kPieces + ((4 * st + tq) ^ swz_cb(j))];
        const uint32_t a0[4] = {a[st][0].x, a[st][1].x, a[st][0].y, a[st][1].y};
        const uint32_t a1[4] = {a[st][0].z, a[st][1].z, a[st][0].w, a[st][1].w};
        M::mma(acc[nt], a0, M::b_word(b.x), M::b_word(b.y));
        M::mma(acc[nt], a1, M::b_word(b.z), M::b_word(b.w));
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
    cb_tc_kernel<__nv_bfloat16><<<blocks, kThreads, 2 * kT * kN * sizeof(__nv_bfloat16), s>>>(cb, in, d, ct);
  } else {  // 64 KB of shared memory
    constexpr int smem = 2 * kT * kN * sizeof(float);
    mma_tf32::allow_smem(cb_tc_kernel<float>, smem);
    cb_tc_kernel<float><<<blocks, kThreads, smem, s>>>(cb, in, d, ct);
  }
  PCM_CUDA_LAUNCH();
}

}  // namespace pcm::cuda::tc
