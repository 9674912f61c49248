// matmul_forward: out[t, r] = sum_k in[t, k] * W[r, k] + bias[r] — every projection of the model.
#pragma once
#include <cstdint>

#include "tensor/matrix.h"

namespace pcm::cpu {

enum class MatmulPrecision {
  Exact,            // fp32 activations, fp32 accumulation: matches the fp32 reference to rounding
  Bf16Activations,  // the fast numerics of each weight dtype. bf16 weights: activations rounded to bf16
                    // (vdpbf16ps), fp32 accumulation — PyTorch's and llama.cpp's bf16 numerics, twice the
                    // arithmetic rate. Q8_0 weights in decode: activations quantised to int16 per 32-value
                    // block (vpdpwssd; finer than bf16 rounding, llama.cpp uses int8).
};

// in: [T, W.cols] contiguous float32; out: [T, W.rows]; bias may be null.
// Few rows (decode) stream the weights once in their own dtype with exact fp32 math (AVX-512 when
// present; with Bf16Activations, bf16 weights take bf16 activations and Q8_0 weights int16 ones). Many rows (prefill): bf16 weights use the vdpbf16ps GEMM when `precision` allows and the
// CPU has AVX512_BF16; otherwise OpenBLAS sgemm, widening bf16/f16 weights block by block.
void matmul_forward(float* out, const float* in, const MatrixRef& W, const float* bias, int64_t T,
                    MatmulPrecision precision = MatmulPrecision::Exact);

// Whether Bf16Activations has a fast kernel on this CPU.
bool bf16_gemm_available();

// What decode's projections run on for weights of `dtype` (for reports): "bf16-activation (AVX512_BF16)",
// "int16-activation (AVX512_VNNI)" or "fp32-activation".
const char* decode_projection_kind(DType dtype, bool exact);

// Rows at or below this count take the streaming matrix-vector path.
constexpr int64_t kMatvecMaxRows = 8;

}  // namespace pcm::cpu
