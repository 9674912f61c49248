// Device side of the SSD state pass folded into the tensor-core chunk states (ssd_prefill_tc.cu): the block of
// (chunk c, head h) waits for the state entering chunk c, published by chunk c - 1's block of the same head, and
// publishes the state leaving it. Why: the separate pass read the local states back and wrote the entering
// states (2 x 268 MB per Codestral layer at T = 16384) in a serial chain per thread (bench/cuda_notes.md, ssdpass).
// Forward progress: each block takes its logical index from a ticket, so it only ever waits on a block that took
// an earlier ticket, i.e. one that is running or done. The flags and the ticket counter are zeroed by the
// launch before (cumsum_kernel), so the handoff needs no memset of its own.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace pcm::cuda::state_pass {

__device__ __forceinline__ unsigned ld_acquire(const unsigned* p) {
  unsigned v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}
__device__ __forceinline__ void st_release(unsigned* p, unsigned v) {
  asm volatile("st.release.gpu.global.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}

// The block's logical index, in the order blocks start (every thread gets it).
__device__ __forceinline__ int ticket(unsigned* counter) {
  __shared__ int t;
  if (threadIdx.x == 0) t = static_cast<int>(atomicAdd(counter, 1u));
  __syncthreads();
  return t;
}

// The sequence that owns chunk c: the last s < seqs with seq_chunk[s] <= c (sequences without chunks skipped).
__device__ __forceinline__ int seq_of(const int32_t* seq_chunk, int seqs, int c) {
  int lo = 0, hi = seqs - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) >> 1;
    if (seq_chunk[mid] <= c) lo = mid; else hi = mid - 1;
  }
  return lo;
}

// Until *flag is set; afterwards the publisher's stores are visible to the whole block (read them with ld.cg:
// L1 is not coherent).
__device__ __forceinline__ void wait(const unsigned* flag) {
  if (threadIdx.x == 0)
    while (ld_acquire(flag) == 0) __nanosleep(32);
  __syncthreads();
}

// After every thread of the block stored its part: the barrier orders the block's stores before thread 0's
// release (cumulative), as CUTLASS's GenericBarrier does (no fence besides the release).
__device__ __forceinline__ void publish(unsigned* flag) {
  __syncthreads();
  if (threadIdx.x == 0) st_release(flag, 1u);
}

__device__ __forceinline__ float load_slot(const void* base, bool bf16, int64_t i) {
  return bf16 ? __bfloat162float(static_cast<const __nv_bfloat16*>(base)[i]) : static_cast<const float*>(base)[i];
}
__device__ __forceinline__ void store_slot(void* base, bool bf16, int64_t i, float v) {
  if (bf16)
    static_cast<__nv_bfloat16*>(base)[i] = __float2bfloat16(v);
  else
    static_cast<float*>(base)[i] = v;
}

}  // namespace pcm::cuda::state_pass
