// Timing of candidate matmul algorithms on the stream, for the products that pick theirs by measurement at first
// use (gemm_cuda.cpp: the prefill's projections; train_gemm_cuda.cpp: training's products).
#pragma once
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
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

// The search both tuners run: run(-1) is the reference (the choice kept unless beaten), run(i) for i in [first,
// count) the candidates; restore() puts an in-place output back before each run, digest() fingerprints the output.
// The pick is the fastest candidate that beats the reference by 2% with the reference's output bits (so a choice by
// timing never changes a result); index -1 when none does. The output is left as the last run wrote it.
struct TimedPick {
  int index = -1;
  float ref_ms = 0.0f, ms = 0.0f;  // ms: the pick's (the reference's when none)
};
inline TimedPick fastest_same_bits(int first, int count, const std::function<void()>& restore,
                                   const std::function<void(int)>& run, const std::function<uint64_t()>& digest,
                                   cudaStream_t s) {
  TimedPick p;
  p.ref_ms = p.ms = median_time_ms(restore, [&] { run(-1); }, s);
  const uint64_t want = digest();
  float best = 0.98f * p.ref_ms;
  for (int i = first; i < count; ++i) {
    const float t = median_time_ms(restore, [&] { run(i); }, s);
    if (t < best && digest() == want) {
      best = p.ms = t;
      p.index = i;
    }
  }
  return p;
}

}  // namespace pcm::cuda
