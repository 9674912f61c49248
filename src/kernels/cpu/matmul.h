// matmul_forward: out[t, r] = sum_k in[t, k] * W[r, k] + bias[r] — every projection of the model.
#pragma once
#include <cstdint>

#include "tensor/matrix.h"

namespace pcm::cpu {

// in: [T, W.cols] contiguous float32; out: [T, W.rows]; bias may be null.
// Few rows (decode) stream the weights once in their own dtype; many rows (prefill) use OpenBLAS sgemm,
// widening bf16/f16 weights block by block into a per-thread scratch buffer.
void matmul_forward(float* out, const float* in, const MatrixRef& W, const float* bias, int64_t T);

// Rows at or below this count take the streaming matrix-vector path.
constexpr int64_t kMatvecMaxRows = 8;

}  // namespace pcm::cpu
