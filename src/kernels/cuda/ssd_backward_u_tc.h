// The chunk-local state adjoint of the chunked SSD backward (ssd_chunked_backward.cu) on the TF32 tensor
// cores with mma.sync, one block per (chunk, head): selected by PCM_SSD_BACKWARD=chunked-tc for head_dim 64.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/ops.h"

namespace pcm::cuda::bwd_tc {

// U_c[p, n] = Σ_i e^cs_i dY[i, p] C[i, n] over the chunk's rows, per chunk c and head h of group g.
struct UArgs {
  const float* c_t;  // [chunks, G, N, Q]: each chunk's C transposed, rounded to TF32, 0 past len (16-byte aligned)
  const float* dy;  // [T, H * P]
  const float* cs;  // [chunks, H, Q]
  float* U;         // [chunks, H, P, N], each head's P x N in 4 x 4 blocks (ssd_state_blocks.cuh)
  SsdDims d;
  ChunkTable ct;
};

bool u_supported(const SsdDims& d, int32_t Q);
void u_product(const UArgs& a, cudaStream_t s);

}  // namespace pcm::cuda::bwd_tc
