// Backward of conv1d_silu_forward (causal depthwise conv1d + bias + SiLU) over one sequence.
#pragma once
#include <cstdint>

namespace pcm::cpu {

// Same layout as conv1d_silu_forward: in row t at in + t * in_stride; window [C, K] holds the inputs
// before t = 0 (oldest first; null = zeros, a document start). dout: [T, C], the gradient of the
// post-SiLU output. Writes din (row t at din + t * din_stride, =); accumulates dweight [C, K] and
// dbias [C] (null = no bias gradient) and dwindow [C, K] (null = not wanted).
void conv1d_silu_backward(float* din, int64_t din_stride, float* dweight, float* dbias, float* dwindow,
                          const float* dout, const float* in, int64_t in_stride, const float* window,
                          const float* weight, const float* bias, int64_t T, int64_t C, int64_t K);

}  // namespace pcm::cpu
