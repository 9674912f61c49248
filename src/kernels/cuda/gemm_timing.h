// Timing of candidate matmul algorithms on the stream, for the products that pick theirs by measurement at first
// use (gemm_cuda.cpp: the prefill's projections; train_gemm_cuda.cpp: training's products).
#pragma once
#include <cuda_runtime_api.h>

#include <algorithm>
#include <functional>

#include "kernels/cuda/cuda_check.h"

namespace pcm::cuda {

// Median of 3 timed runs (after one untimed) on the stream, in ms; prep() before each, untimed.
inline float median_time_ms(const std::function<void()>& prep, const std::function<void()>& run, cudaStream_t s) {
  cudaEvent_t e0, e1;
  PCM_CUDA(cudaEventCreate(&e0));
  PCM_CUDA(cudaEventCreate(&e1));
  prep();
  run();
  float t[3];
  for (float& ti : t) {
    prep();
    PCM_CUDA(cudaEventRecord(e0, s));
    run();
    PCM_CUDA(cudaEventRecord(e1, s));
    PCM_CUDA(cudaEventSynchronize(e1));
    PCM_CUDA(cudaEventElapsedTime(&ti, e0, e1));
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  std::sort(t, t + 3);
  return t[1];
}

}  // namespace pcm::cuda
