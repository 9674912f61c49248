// Causal depthwise conv1d + SiLU over one sequence, continuing from (and updating) its conv window.
#pragma once
#include <cstdint>

namespace pcm::cpu {

// in: T rows of C channels at in + t * in_stride (xBC, a slice of in_proj's output).
// window: [C, K], the last K inputs before this call (oldest first; zeros for a fresh sequence).
// out[t, c] = silu(bias[c] + sum_k weight[c, k] * input[t - K + 1 + k, c]), inputs before t = 0 taken
// from the window; afterwards the window holds the last K inputs. out: [T, C] contiguous.
void conv1d_silu_forward(float* out, const float* in, int64_t in_stride, float* window, const float* weight,
                         const float* bias, int64_t T, int64_t C, int64_t K);

}  // namespace pcm::cpu
