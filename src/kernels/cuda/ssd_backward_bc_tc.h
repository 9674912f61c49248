// dB and dC of the chunked SSD backward (ssd_chunked_backward.cu) on the TF32 tensor cores with mma.sync,
// one block per (chunk, head): selected by PCM_SSD_BACKWARD=chunked-tc (tc = true) for head_dim 64.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/ops.h"

namespace pcm::cuda::bwd_tc {

// The operands of one of the two products (per chunk c, head h of group g, rows < len of the chunk):
//   dC[i] = e^cs_i  Σ_p dY[i, p] S0[p, :] + Σ_{j <= i} dCB[i, j] B[j, :]    (and inter_i = <first term, C_i>)
//   dB[j] = w_j     Σ_p  X[j, p] dS[p, :] + Σ_{i >= j} dCB[i, j] C[i, :]    w_j = e^(cs_last − cs_j) dt_j
struct BcArgs {
  const float* xbc;  // x | B | C rows, row stride ld
  int64_t ld;
  const float* dt;     // [T, H]
  const float* dy;     // [T, H * P]
  const float* cs;     // [chunks, H, Q]
  const float* state;  // [chunks, H, P, N]: S0 (dC) or dS (dB)
  const float* dcb;    // [chunks, H, Q, Q]: rows i < len, columns j <= i
  float* inter;        // [chunks, H, inter_slots, Q]: slot 0 gets the whole dot, the others 0 (dC only)
  int inter_slots;
  float* out;  // [T, H, N]: per-head dC or dB
  SsdDims d;
  ChunkTable ct;
};

// Whether the kernels take this shape (otherwise the caller keeps the 64x64 tile kernels).
bool bc_supported(const SsdDims& d, int32_t Q);
// is_c: dC (with inter) from S0 and B, else dB from dS and C.
void bc_product(const BcArgs& a, bool is_c, cudaStream_t s);

}  // namespace pcm::cuda::bwd_tc
