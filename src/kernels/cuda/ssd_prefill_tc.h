// Tensor-core (mma.sync TF32) kernels for the two heavy steps of the chunked SSD prefill, for heads of
// P = 64 and states of N = 128 (Mamba-Codestral): one block per (chunk, head) does the whole chunk, its
// operands read from device memory once into shared memory (bench/cuda_notes.md, prefill v9).
// Internal to ssd.cu, which falls back to its generic tiles for other shapes.
#pragma once
#include <cuda_runtime_api.h>

#include "kernels/cuda/ops.h"

namespace pcm::cuda::tc {

// Shapes and layouts these kernels take: P = 64, N = 128, Q <= 256 and a multiple of 16, 16-byte aligned rows.
bool ssd_tc_supported(const SsdIn& in, const SsdDims& d, int64_t Q);

// states[c, h, p, n] = Σ_j x[j, p] exp(cs_last - cs_j) dt_j B[j, n]   (cs: [chunks, H, Q]). bt: B of each chunk
// transposed and rounded to TF32, [chunks, G, N, Q] with zeros past len (16-byte aligned), instead of in.xbc's B.
void chunk_states(float* states, const float* cs, const SsdIn& in, const SsdDims& d, const ChunkTable& ct,
                  cudaStream_t s, const float* bt = nullptr);

// y[i, p] = exp(cs_i) Σ_n C[i, n] S[p, n] + Σ_{j<=i} CB[i, j] exp(cs_i - cs_j) dt_j x[j, p] + D x[i, p]
// (cb: [chunks, G, Q, Q], causal 64-tiles written; states: the state entering each chunk)
void chunk_output(float* y, const float* cs, const float* cb, const float* states, const SsdIn& in, const SsdDims& d,
                  const ChunkTable& ct, cudaStream_t s);

}  // namespace pcm::cuda::tc
