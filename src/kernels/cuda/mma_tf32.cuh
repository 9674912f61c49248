// mma.sync TF32 helpers of the SSD's per-(chunk, head) kernels (ssd_prefill_tc.cu, ssd_backward_*_tc.cu).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/cuda_check.h"

namespace pcm::cuda::mma_tf32 {

__device__ __forceinline__ uint32_t to_tf32(float x) {
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
  return r;
}
__device__ __forceinline__ float round_tf32(float x) { return __uint_as_float(to_tf32(x)); }
__device__ __forceinline__ uint32_t bits(float x) { return __float_as_uint(x); }
// x rounded to the nearest TF32 (ties away from zero, as cvt.rna) for an mma operand, with one integer add: the
// tensor cores read only the top 19 bits of a .tf32 register, so the low 13 need not be cleared (CUTLASS's
// round_half_ulp_truncate).
__device__ __forceinline__ uint32_t rna_bits(float x) { return __float_as_uint(x) + 0x1000u; }

// d += a·b on one 16x8 tile, k = 8. Fragments (g = lane / 4, t = lane % 4): a0 (g, t), a1 (g+8, t), a2 (g, t+4),
// a3 (g+8, t+4); b0 (k t, col g), b1 (k t+4, col g); d0, d1 (g, 2t, 2t+1), d2, d3 (g+8, 2t, 2t+1).
__device__ __forceinline__ void mma(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0,
                                    uint32_t b1) {
  asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// 4 consecutive floats; vec: 16-byte aligned (one load), else 4 (the tests use odd row strides).
__device__ __forceinline__ float4 load4(const float* p, bool vec) {
  if (vec) return __ldg(reinterpret_cast<const float4*>(p));
  return make_float4(__ldg(p), __ldg(p + 1), __ldg(p + 2), __ldg(p + 3));
}

// Each k = 16 step of a product: the lanes take k in the order 4t..4t+3 for A and B alike, so an A fragment
// is 4 consecutive floats of a row: the first mma takes k 4t, 4t+1 (logical t, t+4), the second 4t+2, 4t+3.
// B lies in shared memory as [k][col] with a row stride sn = 2 mod 8: rows 4t apart fall 8t banks apart, so the
// 32 lanes (8 columns g x 4 rows t) of a b load hit 32 banks.
// kSweeps: the k-halves as two sweeps over the column blocks, so that no mma waits on the one just issued (same
// accumulator); otherwise both halves per column block (fewer live registers: the B values of one block at a time).
template <int kNt, bool kSweeps = true>
__device__ __forceinline__ void step16(float (&acc)[kNt][4], const uint32_t (&a0)[4], const uint32_t (&a1)[4],
                                       const float* b, int sn, int nts) {
  if constexpr (kSweeps) {
#pragma unroll
    for (int nt = 0; nt < kNt; ++nt)
      if (nt < nts) mma(acc[nt], a0[0], a1[0], a0[1], a1[1], bits(b[8 * nt]), bits(b[8 * nt + sn]));
#pragma unroll
    for (int nt = 0; nt < kNt; ++nt)
      if (nt < nts) mma(acc[nt], a0[2], a1[2], a0[3], a1[3], bits(b[8 * nt + 2 * sn]), bits(b[8 * nt + 3 * sn]));
  } else {
#pragma unroll
    for (int nt = 0; nt < kNt; ++nt)
      if (nt < nts) {
        mma(acc[nt], a0[0], a1[0], a0[1], a1[1], bits(b[8 * nt]), bits(b[8 * nt + sn]));
        mma(acc[nt], a0[2], a1[2], a0[3], a1[3], bits(b[8 * nt + 2 * sn]), bits(b[8 * nt + 3 * sn]));
      }
  }
}

// Host, before a launch: dynamic shared memory past 48 KB, and the whole L1/shared split as shared so that
// two blocks fit per SM (the driver may otherwise pick a split that holds one).
template <class Kernel>
void allow_smem(Kernel k, int bytes) {
  PCM_CUDA(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  PCM_CUDA(cudaFuncSetAttribute(k, cudaFuncAttributePreferredSharedMemoryCarveout, cudaSharedmemCarveoutMaxShared));
}

}  // namespace pcm::cuda::mma_tf32
