// dCB and the R sums of the chunked SSD backward (ssd_chunked_backward.cu) on the TF32 tensor cores with
// mma.sync, one block per (chunk, head): selected by PCM_SSD_BACKWARD=chunked-tc for head_dim 64.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/ops.h"

namespace pcm::cuda::bwd_tc {

// Per chunk c, head h of group g, rows i < len, columns j <= i (L_ij = e^(cs_i − cs_j)):
//   dM = dY Xᵀ,  dCB = dM ∘ L ∘ dtᵀ,  R = dM ∘ L ∘ CB,  col_j = Σ_i R_ij,  row_i = Σ_j R_ij dt_j
// col and row go to the tile kernel's slots (per 64-tile): the whole sum in the first slot the scalar step
// reads (col: i-tile j / 64, row: j-tile 0), zeros in the other slots it reads.
struct DcbArgs {
  const float* xbc;  // x | B | C rows, row stride ld
  int64_t ld;
  const float* dt;  // [T, H]
  const float* dy;  // [T, H * P]
  const float* cs;  // [chunks, H, Q]
  const float* cb;  // [chunks, G, Q, Q]: C·Bᵀ (64x64 tiles with j-tile <= i-tile)
  float* dcb;       // [chunks, H, Q, Q]
  float *col, *row;  // [chunks, H, qt, Q]
  int qt;
  SsdDims d;
  ChunkTable ct;
};

bool dcb_supported(const SsdDims& d, int32_t Q);
void dcb_product(const DcbArgs& a, cudaStream_t s);

}  // namespace pcm::cuda::bwd_tc
