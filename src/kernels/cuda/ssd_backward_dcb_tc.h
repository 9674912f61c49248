// dCB (summed over each group's heads) and the per-head R sums of the chunked SSD backward (ssd_chunked_backward.cu) on
// the TF32 tensor cores with mma.sync: selected by PCM_SSD_BACKWARD=chunked-tc for head_dim 64.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/ops.h"

namespace pcm::cuda::bwd_tc {

// Per chunk c, head h of group g, rows i < len, columns j <= i (L_ij = e^(cs_i − cs_j)):
//   dM = dY Xᵀ,  dCB_h = dM ∘ L ∘ dtᵀ,  R = dM ∘ L ∘ CB,  col_j = Σ_i R_ij,  row_i = Σ_j R_ij dt_j
// B and C are shared by a group's heads, so dB and dC need only Σ_h dCB_h: the kernel sums it over the heads of one
// split of the group (splits x heads_per_split >= H / G) into dcb[c, g, split] (rows i < len of the 64x64 tiles with
// j-tile <= i-tile; 0 for j > i), then adds the splits in a fixed order into dcb_sum[c, g] and its transpose
// dcb_sum_t[c, g] (rows i < len, columns j <= i of the 32x32 tiles with j-tile <= i-tile; 0 past len): what dC and
// dB read, one 16-byte load per fragment row. col and row go to the 64-tile slots the scalar step reads (col:
// i-tile, row: j-tile), every slot written.
struct DcbArgs {
  const float* xbc;  // x | B | C rows, row stride ld
  int64_t ld;
  const float* dt;   // [T, H]
  const float* dy;   // [T, H * P]
  const float* cs;   // [chunks, H, Q]
  const float* cb;   // [chunks, G, Q, Q]: C·Bᵀ (64x64 tiles with j-tile <= i-tile)
  float* dcb;        // [chunks, G, splits, Q, Q], then dcb_sum [chunks, G, Q, Q] and dcb_sum_t [chunks, G, Q, Q]
  float *col, *row;  // [chunks, H, qt, Q]
  int qt;
  SsdDims d;
  ChunkTable ct;
};

bool dcb_supported(const SsdDims& d, int32_t Q);
// Splits of a group's heads; dcb_floats: the floats dcb needs (splits + 2 matrices of Q x Q per chunk and group).
int dcb_splits(const SsdDims& d);
int64_t dcb_floats(int64_t chunks, int32_t Q, const SsdDims& d);
// Where dcb_product leaves Σ_h dCB_h and its transpose inside a.dcb.
const float* dcb_sum(const float* dcb, int64_t chunks, int32_t Q, const SsdDims& d);
const float* dcb_sum_t(const float* dcb, int64_t chunks, int32_t Q, const SsdDims& d);
void dcb_product(const DcbArgs& a, cudaStream_t s);

}  // namespace pcm::cuda::bwd_tc
