// The staged (shared-memory double-buffered) forms of the RMSNorm and grouped gated RMSNorm backwards,
// used by rmsnorm_backward / gated_rmsnorm_backward (norm_backward.cu) where the layout allows 16-byte
// copies.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace pcm::cuda {

constexpr int64_t kStagedMaxGroup = 4096;  // channels of a row (group): 2 stages x 3 arrays = 96 KB of shared memory

struct StagedGatedArgs {
  float* dy;
  float* dz;         // may be null
  uint16_t* dz16;    // may be null
  int64_t dz_stride;
  void* yn;          // may be null; bf16 when yn_bf16
  bool yn_bf16;
  float* partial;    // [blocks, C] weight-gradient partials
  const float* dout;
  const void* y;     // fp32, or bf16 when y_bf16
  const void* z;     // fp32, or bf16 when z_bf16
  int64_t z_stride;
  const float* w;
  int64_t T, C, gs;
  float eps;
  bool y_bf16 = false;
  bool z_bf16 = false;
};

struct StagedRmsArgs {
  float* dx;         // = g, or += g when accumulate
  uint16_t* dx16;    // may be null: the new dx rounded
  bool accumulate;
  float* partial;    // [blocks, C]
  const float *dout, *x, *w;
  int64_t T, C;
  float eps;
  void* xn;          // may be null: x * r * w, bf16 when xn_bf16
  bool xn_bf16;
};

bool rms_bwd_staged_supported(const StagedRmsArgs& a);
void rms_bwd_staged(const StagedRmsArgs& a, int64_t rows_per_block, int64_t blocks, cudaStream_t s);

bool gated_bwd_staged_supported(const StagedGatedArgs& a);
// blocks x (C / gs) blocks, each over rows_per_block rows (blocks * rows_per_block >= T).
void gated_bwd_staged(const StagedGatedArgs& a, int64_t rows_per_block, int64_t blocks, cudaStream_t s);

}  // namespace pcm::cuda
