// dX of the chunked SSD backward (ssd_chunked_backward.cu) on the TF32 (or, for bf16 training, bf16) tensor cores
// with mma.sync, one block per (chunk, head): selected by PCM_SSD_BACKWARD=chunked-tc (tc = true) for head_dim 64.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/ops.h"

namespace pcm::cuda::bwd_tc {

// Per chunk c, head h of group g, rows j < len (M[i, j] = CB[i, j] e^(cs_i − cs_j) dt_j for i >= j):
//   dX[j] = D dY[j] + w_j G[j] + Σ_{i >= j} M[i, j] dY[i],   G = B dSᵀ,   w_j = e^(cs_last − cs_j) dt_j
// and the partial sums the scalar step reads: u_j = <G_j, X_j> and Σ dY∘X over the chunk.
struct DxArgs {
  const float* xbc;  // x | B | C rows, row stride ld
  int64_t ld;
  const float *dt, *D;  // [T, H], [H]
  const float* dy;      // [T, H * P]
  const float* cs;      // [chunks, H, Q]
  const float* cbt;     // [chunks, G, Q, Q]: (C·Bᵀ)ᵀ, row j = column j of C·Bᵀ (64-tiles with j-tile <= i-tile)
  const float* dS;      // [chunks, H, P, N]: adjoint of the state leaving each chunk, 4 x 4 blocks (ssd_state_blocks.cuh)
  const float* b_tf32;  // B rounded to TF32: rows [T, b_ld], group g's at column g N (16-byte aligned)
  int64_t b_ld;
  float* dx;            // x columns of dxbc, row stride dx_stride
  int64_t dx_stride;
  float* u;    // [chunks, H, 1, Q] (one p-tile: P = 64)
  float* dDt;  // [chunks, H, qt, 1]: entry 0 the chunk's Σ dY∘X, the others of its rows' 64-tiles 0
  int qt;
  bool bf16;  // the products on bf16 mma (m16n8k16) instead of TF32: operands rounded to bf16, fp32 accumulation
  SsdDims d;
  ChunkTable ct;
};

// Whether the kernel takes this shape (otherwise the caller keeps the 64x64 tile kernel).
bool dx_supported(const SsdDims& d, int32_t Q);
void dx_product(const DxArgs& a, cudaStream_t s);

}  // namespace pcm::cuda::bwd_tc
