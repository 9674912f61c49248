// x86 kernels for bf16 weights, chosen at run time by what the CPU supports.
#pragma once
#include <cstdint>

namespace pcm::cpu::x86 {

bool has_avx512();       // F + BW + VL: the exact fp32-accumulate kernels
bool has_avx512_bf16();  // + AVX512_BF16 (vdpbf16ps): bf16-activation GEMM
bool has_avx2();         // AVX2 + FMA: the fallback matvec kernels (matmul_avx2.cpp)
bool has_avx512_vnni();  // F + BW + VL + AVX512_VNNI (vpdpwssd) + F16C: the fast Q8_0 decode kernel

// AVX2 versions of the matvec kernels below (same results, exact fp32 math).
void matvec_bf16_f32_avx2(float* out, const float* in, const uint16_t* W, int64_t rows, int64_t K, int64_t T);
void matvec_q8_0_f32_avx2(float* out, const float* in, const uint8_t* W, int64_t rows, int64_t K, int64_t T);

// Exact: out[t, r] = sum_k float(W[r, k]) * in[t, k] for T <= 8 rows, one pass over W.
// Rows are split across the OpenMP threads.
void matvec_bf16_f32(float* out, const float* in, const uint16_t* W, int64_t rows, int64_t K, int64_t T);

// Fast decode: the same for T <= 8 bf16 activation rows, one pass over W (vdpbf16ps).
void matvec_bf16_bf16(float* out, const uint16_t* in_bf16, const uint16_t* W, int64_t rows, int64_t K, int64_t T);

// Fast: activations rounded to bf16, products accumulated in fp32 (vdpbf16ps), as bf16 inference
// in PyTorch or llama.cpp does. in_bf16: [T, K]. out: [T, rows]. In gemm_bf16_x86.cpp.
void gemm_bf16_bf16(float* out, const uint16_t* in_bf16, const uint16_t* W, int64_t rows, int64_t K, int64_t T);

// Q8_0 weights (rows x K, K a multiple of 32), fp32 activations, T <= 8 rows; exact up to the
// weights' quantisation. In matmul_q8_x86.cpp.
void matvec_q8_0_f32(float* out, const float* in, const uint8_t* W, int64_t rows, int64_t K, int64_t T);

// Fast Q8_0 decode: the same product with the activations quantised to int16 per 32-value block (at most
// 2^-16 of the block's largest magnitude), int8 x int16 products summed exactly in int32 (vpdpwssd), then
// scaled in fp32. NaN or Inf in a block makes its outputs NaN. In matvec_q8_i16_x86.cpp.
void matvec_q8_0_i16(float* out, const float* in, const uint8_t* W, int64_t rows, int64_t K, int64_t T);

// in (fp32) -> bf16, round to nearest even.
void convert_f32_to_bf16(uint16_t* out, const float* in, int64_t n);

}  // namespace pcm::cpu::x86
