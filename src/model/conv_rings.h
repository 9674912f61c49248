// The CUDA state pool keeps each layer's conv window as a ring [K, C] (row p mod K: the input at position p; see
// src/kernels/cuda/ops.h), SequenceState as [C, K] in time order. After n tokens, time index k holds position
// n - K + k, i.e. ring row (n + k) mod K.
#pragma once
#include <cstdint>
#include <span>

namespace pcm {

// `layers` windows [C, K] -> rings [K, C] of a sequence that has seen n tokens (to_rings), or rings -> windows, into
// `to` (from's size; the caller's buffer, e.g. SequenceState::conv, so no temporary is needed).
void conv_windows_as_rings(std::span<const float> from, std::span<float> to, int64_t layers, int64_t C, int64_t K,
                           int64_t n, bool to_rings);

}  // namespace pcm
