// The conv window as a ring (layout in ops.h, PackedSeqs): row p mod K of a slot's [K, C] window holds the input at
// position p. conv_ring_row serves every reader and writer of rings; conv_ring_step the scalar decode kernel
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

// One decode step of one channel: the conv sum over the K - 1 inputs before position pos (from the ring) and x at
// pos, which then takes its row. win: the slot's window + the channel (rows C apart); w: the channel's K taps.
__device__ __forceinline__ float conv_ring_step(float* win, int64_t C, int pos, const float* w, float bias, float x,
                                                int K) {
  float acc = bias + w[K - 1] * x;
#pragma unroll
  for (int k = 0; k < kConvMaxK - 1; ++k)
    if (k < K - 1) acc += w[k] * win[conv_ring_row(pos, k + 1, K) * C];  // position pos - (K - 1) + k
  win[pos * C] = x;
  return acc;
}

}  // namespace pcm::cuda
