// cp.async (sm_80+) copies from device memory into shared memory that complete in the background, for the
// double-buffered per-head tiles of the SSD backward kernels (ssd_backward_bc_tc.cu, ssd_backward_dcb_tc.cu).
// Each copy reads `bytes` from src, or writes zeros when !valid (src is then not read but must be a valid
// address). The copies of a thread are visible to it after wait_group, to the block after a barrier.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace pcm::cuda::cp_async {

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void copy16(float* dst, const float* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(smem_addr(dst)), "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void copy8(float* dst, const float* src, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;" ::"r"(smem_addr(dst)), "l"(src), "r"(valid ? 8 : 0));
}
__device__ __forceinline__ void copy4(float* dst, const float* src, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;" ::"r"(smem_addr(dst)), "l"(src), "r"(valid ? 4 : 0));
}
// 4 consecutive floats: dst and src 16-byte aligned (kAlign 16), 8-byte aligned (8) or any (4).
template <int kAlign>
__device__ __forceinline__ void copy4f(float* dst, const float* src, bool valid) {
  if constexpr (kAlign == 16) {
    copy16(dst, src, valid);
  } else if constexpr (kAlign == 8) {
    copy8(dst, src, valid);
    copy8(dst + 2, src + 2, valid);
  } else {
#pragma unroll
    for (int u = 0; u < 4; ++u) copy4(dst + u, src + u, valid);
  }
}
__device__ __forceinline__ void commit() { asm volatile("cp.async.commit_group;"); }
// Wait until at most kPending of this thread's most recent groups are still in flight.
template <int kPending>
__device__ __forceinline__ void wait_group() {
  asm volatile("cp.async.wait_group %0;" ::"n"(kPending) : "memory");
}

}  // namespace pcm::cuda::cp_async
