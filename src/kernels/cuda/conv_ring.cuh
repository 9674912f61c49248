// The conv window as a ring (layout in ops.h, PackedSeqs): row p mod K of a slot's [K, C] window holds the input at
// position p. conv_ring_row serves every reader and writer of rings; conv_ring_sum the scalar decode kernel
// (conv1d.cu) and the fused in_proj's epilogue (decode_fused.cu).
#pragma once
#include <cstdint>

namespace pcm::cuda {

constexpr int kConvMaxK = 8;  // taps the CUDA conv kernels take

// Ring row of position pos + j, for pos in [0, K) and j in (-K, K).
__device__ __forceinline__ int conv_ring_row(int pos, int j, int K) {
  const int r = pos + j;
  return r < 0 ? r + K : r >= K ? r - K : r;
}

// One decode step's conv sum for one channel: the K - 1 inputs before position pos (from the ring) and x at pos.
// Reads only; the caller then stores x in row pos (win[pos * C]). win: the slot's window + the channel (rows C apart);
// w: the channel's K taps. Every tap's load is issued before any is used: one memory round trip for all of them (with
// the sum between loads each waited for the one before, decode v20).
__device__ __forceinline__ float conv_ring_sum(const float* win, int64_t C, int pos, const float* w, float bias,
                                               float x, int K) {
  float tap[kConvMaxK - 1];
  if (K == 4) {  // every published Mamba-2
    tap[0] = win[((pos + 1) & 3) * C];
    tap[1] = win[((pos + 2) & 3) * C];
    tap[2] = win[((pos + 3) & 3) * C];
  } else {
#pragma unroll
    for (int k = 0; k < kConvMaxK - 1; ++k) tap[k] = k < K - 1 ? win[conv_ring_row(pos, k + 1, K) * C] : 0.0f;
  }
  float acc = bias + w[K - 1] * x;
#pragma unroll
  for (int k = 0; k < kConvMaxK - 1; ++k)
    if (k < K - 1) acc += w[k] * tap[k];  // position pos - (K - 1) + k
  return acc;
}

}  // namespace pcm::cuda
