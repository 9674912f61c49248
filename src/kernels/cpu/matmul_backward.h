// Backward of out = in · Wᵀ + bias for fp32 training (W row-major [R, K]), with OpenBLAS sgemm.
#pragma once
#include <cstdint>

namespace pcm::cpu {

// dout: [T, R], in: [T, K], W: [R, K].
// din = dout · W (written, =; null = not wanted); dW += doutᵀ · in; dbias += column sums of dout (null = none).
void matmul_backward(float* din, float* dW, float* dbias, const float* dout, const float* in, const float* W,
                     int64_t T, int64_t R, int64_t K);

}  // namespace pcm::cpu
