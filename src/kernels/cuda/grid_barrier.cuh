// A barrier across every block of a cooperative launch (all blocks resident), on one global word zeroed before the
// launch and counting up: the n-th barrier waits for n x gridDim.x arrivals. Thread 0 releases the block's writes
// (fence, then its arrival) and acquires the others' (ld.acquire), and __syncthreads passes both on to the block, so
// after the barrier plain loads see what any block wrote before it (as cooperative_groups' grid sync).
#pragma once
#include <cuda_runtime.h>

namespace pcm::cuda {

__device__ __forceinline__ void grid_barrier(unsigned* counter, unsigned target) {
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence();
    atomicAdd(counter, 1u);
    unsigned seen = 0;
    do {
      asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(seen) : "l"(__cvta_generic_to_global(counter)) : "memory");
    } while (seen < target);
    __threadfence();  // as cooperative_groups' grid sync after its wait
  }
  __syncthreads();
}

}  // namespace pcm::cuda
