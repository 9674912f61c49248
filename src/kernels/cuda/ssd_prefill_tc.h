// Tensor-core (mma.sync TF32) kernels for the two heavy steps of the chunked SSD prefill, for heads of
// P = 64 and states of N = 128 (Mamba-Codestral): one block per (chunk, head) does the whole chunk, its
// operands read from device memory once into shared memory (bench/cuda_notes.md, prefill v9).
// Internal to ssd.cu, which falls back to its generic tiles for other shapes.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/ops.h"

namespace pcm::cuda::tc {

// Shapes these kernels take: P = 64, N = 128, Q <= 256 and a multiple of 16; and layouts: 16-byte aligned rows.
bool ssd_tc_shape_supported(const SsdDims& d, int64_t Q);
bool ssd_tc_supported(const SsdIn& in, const SsdDims& d, int64_t Q);

// What the state pass needs besides the chunk table (ssd.cu's state_pass_kernel takes the same).
struct StatePass {
  void* slot = nullptr;  // sequence i starts from slot seq_slot[i] (i when seq_slot is null) at slot * slot_stride,
                         // [H, P, N], fp32 or bf16; null: from zeros
  bool slot_bf16 = false;
  int64_t slot_stride = 0;
  const int32_t* seq_slot = nullptr;
  int32_t seqs = 0;
  bool keep_final = false;   // the state after each sequence's last chunk into its slot
  unsigned* sync = nullptr;  // [chunks * H] handoff flags, then the block ticket: all zero at launch (null: no pass,
                             // the kernel writes the local states for state_pass_kernel)
};

// local(c)[p, n] = Σ_j x[j, p] exp(cs_last - cs_j) dt_j B[j, n] (cs: [chunks, H, Q]) into states[c, h]; with pass.sync,
// instead the state entering chunk c, S_c = exp(cs_last(c - 1)) S_{c-1} + local(c - 1) along each sequence from its
// slot's state: the local states stay in registers, each (chunk, head) block hands the state on to the next chunk's
// block (ssd_state_pass.cuh). bt: B of each chunk transposed and rounded to TF32, [chunks, G, N, Q] with zeros past len
// (16-byte aligned), instead of in.xbc's B.
void chunk_states(float* states, const float* cs, const SsdIn& in, const SsdDims& d, const ChunkTable& ct,
                  const StatePass& pass, cudaStream_t s, const float* bt = nullptr);

// The same with the state pass (pass.sync set) on bf16 mma.sync from in.xbc_bf16's x and B (ssd_states_bf16.cu).
void chunk_states_bf16(float* states, const float* cs, const SsdIn& in, const SsdDims& d, const ChunkTable& ct,
                       const StatePass& pass, cudaStream_t s);

// CB[c, g, i, j] = Σ_n C[i, n] B[j, n] for the 64-tiles with j-tile <= i-tile (rows, columns past len 0), as ssd.cu's
// cb_kernel (ssd_cb_tc.cu).
void cb_product(float* cb, const SsdIn& in, const SsdDims& d, const ChunkTable& ct, cudaStream_t s);

// y[i, p] = exp(cs_i) Σ_n C[i, n] S[p, n] + Σ_{j<=i} CB[i, j] exp(cs_i - cs_j) dt_j x[j, p] + D x[i, p]
// (cb: [chunks, G, Q, Q], causal 64-tiles written; states: the state entering each chunk)
void chunk_output(float* y, const float* cs, const float* cb, const float* states, const SsdIn& in, const SsdDims& d,
                  const ChunkTable& ct, cudaStream_t s);

// The same outputs on bf16 mma.sync from in.xbc_bf16's x and C, written as bf16 ([T, H P] bf16 at y;
// ssd_output_bf16.cu): the decayed C·Bᵀ and S_enter rounded to bf16 on the way into the fragments, D x from the
// bf16 x.
void chunk_output_bf16(float* y, const float* cs, const float* cb, const float* states, const SsdIn& in,
                       const SsdDims& d, const ChunkTable& ct, cudaStream_t s);

}  // namespace pcm::cuda::tc
