// Internal to the SSD kernels: the shape check every entry point shares, and the chunk quantities of the
// chunked SSD forward (ssd.cu), recomputed by the chunked backward
// (ssd_chunked_backward.cu) so that it can differentiate the same matrix form.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/ops.h"

namespace pcm::cuda {

struct SsdChunkScratch {
  float* cs;      // [chunks, H, Q]: running sum of dt*A inside each chunk
  float* cb;      // [chunks, G, Q, Q]: C·Bᵀ per chunk and group (tiles with j-tile <= i-tile only)
  float* states;  // [chunks, H, P, N]: the state entering each chunk
};

// The shapes every SSD kernel (chunked, decode) takes: N in 1..256, heads split evenly into groups.
void check_ssd_dims(const SsdDims& d);

// The forward's launches up to and including the state pass, from state0 ([seqs, H, P, N], sequence i's
// initial state; null = zeros) without keeping any final state. Uses ssd_chunked_scratch_floats(chunks,
// Q, d) floats of scratch and returns where each quantity lies in it. round_states: the entering states are
// stored rounded to TF32 (for consumers that take them as an mma operand only). cbt (tf32 only): also C·Bᵀ
// transposed, [chunks, G, j, i] (tiles with j-tile <= i-tile), as the tc backward's dX reads it.
SsdChunkScratch ssd_chunk_states(float* scratch, const SsdIn& in, const float* state0, const SsdDims& d,
                                 const ChunkTable& ct, int32_t seqs, bool tf32, cudaStream_t s,
                                 bool round_states = false, float* cbt = nullptr);

// Only C·Bᵀ of ssd_chunk_states (TF32) and its transpose cbt, into the same scratch place: for a backward that takes the
// cumsum and entering states from its forward (SsdTrainIn::saved_*). The returned cs and states are not set.
SsdChunkScratch ssd_chunk_cb(float* scratch, const SsdIn& in, const SsdDims& d, const ChunkTable& ct, float* cbt,
                             cudaStream_t s);

// cbt[c, g, j, i] = cb[c, g, i, j] for the 64-tiles with j-tile <= i-tile (cb as ssd_chunked keeps it, SsdIn::keep_cb).
void ssd_chunk_cb_transpose(float* cbt, const float* cb, const SsdDims& d, const ChunkTable& ct, cudaStream_t s);

// out[c, g, n, q] = xbc[chunk c's row q, col + g N + n] rounded to TF32 for q < len, 0 for len <= q < Q: each
// chunk's B (col = H P) or C (col = H P + G N) transposed, so that four consecutive rows of one column are one
// 16-byte load ([chunks, G, N, Q] floats, out 16-byte aligned).
void ssd_chunk_transpose(float* out, const SsdIn& in, int64_t col, const SsdDims& d, const ChunkTable& ct,
                         cudaStream_t s);

}  // namespace pcm::cuda
