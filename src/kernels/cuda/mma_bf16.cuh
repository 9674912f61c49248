// mma.sync bf16 helpers of the SSD prefill's bf16 kernels (ssd_states_bf16.cu, ssd_output_bf16.cu): fragments as
// mma_tf32.cuh's with a pair of k values per 32-bit register, the smaller k in the low half.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/device_util.cuh"

namespace pcm::cuda::mma_bf16 {

using cuda::pack_bf16x2;  // a fragment's pair of k values (device_util.cuh)

// d += a·b on one 16x8 tile, k = 16.
__device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Four 8x8 b16 matrices from shared memory, transposed: lane L gives the address of row L % 8 of matrix L / 8, and
// r[m] holds (rows 2t, 2t + 1; column g) of matrix m (t = lane % 4, g = lane / 4).
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}

}  // namespace pcm::cuda::mma_bf16
