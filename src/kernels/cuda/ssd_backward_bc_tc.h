// dB and dC of the chunked SSD backward (ssd_chunked_backward.cu) on the TF32 tensor cores with mma.sync, per group (B
// and C are shared by a group's heads): selected by PCM_SSD_BACKWARD=chunked-tc for head_dim 64.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/ops.h"

namespace pcm::cuda::bwd_tc {

// Per chunk c and group g (heads h of g, rows < len of the chunk, dCB = Σ_h dCB_h from dcb_product):
//   dC[i] = Σ_h e^cs_hi Σ_p dY_h[i, p] S0_h[p, :] + Σ_{j <= i} dCB[i, j] B[j, :]
//   dB[j] = Σ_h w_hj    Σ_p  X_h[j, p] dS_h[p, :] + Σ_{i >= j} dCB[i, j] C[i, :]   w_hj = e^(cs_last − cs_j) dt_j
// written into the B and C columns of dxbc, and per head inter_hi = e^cs_hi <dY_h[i] S0_h, C_i> (the inter-chunk term
// of dcs), one slot per 32 columns of N.
struct BcArgs {
  const float* xbc;  // x | B | C rows, row stride ld
  int64_t ld;
  const float* dt;   // [T, H]
  const float* dy;   // [T, H * P]
  const float* cs;   // [chunks, H, Q]
  const float* S0;   // [chunks, H, P, N]: entering states
  const float* dS;   // [chunks, H, P, N]: adjoints of the leaving states, in 4 x 4 blocks (ssd_state_blocks.cuh)
  const float* dcb;   // [chunks, G, Q, Q]: Σ_h dCB_h (dcb_product's dcb_sum)
  const float* dcbt;  // [chunks, G, Q, Q]: its transpose (dcb_sum_t)
  float* inter;  // [chunks, H, inter_slots, Q]: inter_slots = bc_inter_slots(d)
  int inter_slots;
  float* dxbc;  // gradient rows (B and C columns written), row stride dx_stride
  int64_t dx_stride;
  SsdDims d;
  ChunkTable ct;
};

// Whether the kernel takes this shape (otherwise the caller keeps the 64x64 tile kernels).
bool bc_supported(const SsdDims& d, int32_t Q);
// The inter dot's partial sums per row: one per 32 columns of N.
int bc_inter_slots(const SsdDims& d);
// dB and dC in one launch.
void bc_product(const BcArgs& a, cudaStream_t s);

}  // namespace pcm::cuda::bwd_tc
