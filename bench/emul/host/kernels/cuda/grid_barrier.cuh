// Host emulation of src/kernels/cuda/grid_barrier.cuh (same contract): the n-th barrier of a launch waits for
// n x gridDim.x arrivals on the zeroed counter; blocks are processes sharing the counter's mapping.
#pragma once
#include <unistd.h>

#include <atomic>

namespace pcm::cuda {

inline void grid_barrier(unsigned* counter, unsigned target) {
  __syncthreads();
  if (threadIdx.x == 0) {
    std::atomic_ref<unsigned> c(*counter);
    c.fetch_add(1u);
    while (c.load(std::memory_order_acquire) < target) usleep(200);  // sleeping: 100+ spinning blocks starve 2 cores
  }
  __syncthreads();
}

}  // namespace pcm::cuda
