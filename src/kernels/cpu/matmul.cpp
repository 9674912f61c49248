#include "kernels/cpu/matmul.h"

#include <cblas.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu/matmul_x86.h"
#include "util/error.h"

namespace pcm::cpu {

namespace {

// Dot products of one weight row (dtype T_W) with `T` input rows.
template <class Load>
inline void row_dots(const Load& load, const float* in, int64_t K, int64_t T, float* acc) {
  for (int64_t t = 0; t < T; ++t) {
    const float* x = in + t * K;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t k = 0; k < K; ++k) s += load(k) * x[k];
    acc[t] = s;
  }
}

void matvec(float* out, const float* in, const MatrixRef& W, int64_t T) {
  const int64_t K = W.cols;
  if (W.dtype == DType::BF16 && x86::has_avx512()) {
    x86::matvec_bf16_f32(out, in, static_cast<const uint16_t*>(W.data), W.rows, K, T);
    return;
  }
  if (W.dtype == DType::BF16 && x86::has_avx2()) {
    x86::matvec_bf16_f32_avx2(out, in, static_cast<const uint16_t*>(W.data), W.rows, K, T);
    return;
  }
  if (W.dtype == DType::Q8_0) {
    if (x86::has_avx512()) {
      x86::matvec_q8_0_f32(out, in, static_cast<const uint8_t*>(W.data), W.rows, K, T);
      return;
    }
    if (x86::has_avx2()) {
      x86::matvec_q8_0_f32_avx2(out, in, static_cast<const uint8_t*>(W.data), W.rows, K, T);
      return;
    }
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < W.rows; ++r) {
      static thread_local std::vector<float> row;
      row.resize(static_cast<size_t>(K));
      W.row_to_f32(r, row.data());
      float acc[kMatvecMaxRows];
      row_dots([&](int64_t k) { return row[k]; }, in, K, T, acc);
      for (int64_t t = 0; t < T; ++t) out[t * W.rows + r] = acc[t];
    }
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < W.rows; ++r) {
    float acc[kMatvecMaxRows];
    switch (W.dtype) {
      case DType::F32: {
        const float* w = reinterpret_cast<const float*>(W.row_ptr(r));
        row_dots([w](int64_t k) { return w[k]; }, in, K, T, acc);
        break;
      }
      case DType::BF16: {
        const uint16_t* w = reinterpret_cast<const uint16_t*>(W.row_ptr(r));
        row_dots([w](int64_t k) { return bf16_to_f32(w[k]); }, in, K, T, acc);
        break;
      }
      default: {
        const uint16_t* w = reinterpret_cast<const uint16_t*>(W.row_ptr(r));
        row_dots([w](int64_t k) { return f16_to_f32(w[k]); }, in, K, T, acc);
        break;
      }
    }
    for (int64_t t = 0; t < T; ++t) out[t * W.rows + r] = acc[t];
  }
}

void gemm_widened(float* out, const float* in, const MatrixRef& W, int64_t T) {
  constexpr int64_t kBlockRows = 256;
  static thread_local std::vector<float> block;  // grows once, reused by every call
  block.resize(static_cast<size_t>(kBlockRows * W.cols));
  for (int64_t r0 = 0; r0 < W.rows; r0 += kBlockRows) {
    int64_t nr = std::min(kBlockRows, W.rows - r0);
    float* dst = block.data();
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < nr; ++r) W.row_to_f32(r0 + r, dst + r * W.cols);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(T), static_cast<int>(nr),
                static_cast<int>(W.cols), 1.0f, in, static_cast<int>(W.cols), dst, static_cast<int>(W.cols), 0.0f,
                out + r0, static_cast<int>(W.rows));
  }
}

void gemm_bf16_activations(float* out, const float* in, const MatrixRef& W, int64_t T) {
  static thread_local std::vector<uint16_t> in_bf16;  // grows once, reused
  in_bf16.resize(static_cast<size_t>(T * W.cols));
  x86::convert_f32_to_bf16(in_bf16.data(), in, T * W.cols);
  x86::gemm_bf16_bf16(out, in_bf16.data(), static_cast<const uint16_t*>(W.data), W.rows, W.cols, T);
}

// The one place that decides which activations a product takes; matmul_forward and the reports use it.
enum class ActivationKind { Fp32, Bf16, Int16 };
ActivationKind activation_kind(DType dtype, MatmulPrecision precision) {
  if (precision != MatmulPrecision::Bf16Activations) return ActivationKind::Fp32;
  if (dtype == DType::BF16 && x86::has_avx512_bf16()) return ActivationKind::Bf16;
  if (dtype == DType::Q8_0 && x86::has_avx512_vnni()) return ActivationKind::Int16;
  return ActivationKind::Fp32;
}

}  // namespace

bool bf16_gemm_available() { return x86::has_avx512_bf16(); }

const char* decode_projection_kind(DType dtype, bool exact) {
  switch (activation_kind(dtype, exact ? MatmulPrecision::Exact : MatmulPrecision::Bf16Activations)) {
    case ActivationKind::Bf16: return "bf16-activation (AVX512_BF16)";
    case ActivationKind::Int16: return "int16-activation (AVX512_VNNI)";
    default: return "fp32-activation";
  }
}

void matmul_forward(float* out, const float* in, const MatrixRef& W, const float* bias, int64_t T,
                    MatmulPrecision precision) {
  if (T <= 0) return;
  PCM_CHECK(W.dtype == DType::F32 || W.dtype == DType::BF16 || W.dtype == DType::F16 || W.dtype == DType::Q8_0,
            "matmul: unsupported weight dtype {}", dtype_name(W.dtype));
  const ActivationKind kind = activation_kind(W.dtype, precision);
  const bool bf16_fast = kind == ActivationKind::Bf16;
  if (T <= kMatvecMaxRows && bf16_fast) {
    static thread_local std::vector<uint16_t> in_bf16;  // grows once, reused
    in_bf16.resize(static_cast<size_t>(T * W.cols));
    x86::convert_f32_to_bf16(in_bf16.data(), in, T * W.cols);
    x86::matvec_bf16_bf16(out, in_bf16.data(), static_cast<const uint16_t*>(W.data), W.rows, W.cols, T);
  } else if (T <= kMatvecMaxRows && kind == ActivationKind::Int16) {
    x86::matvec_q8_0_i16(out, in, static_cast<const uint8_t*>(W.data), W.rows, W.cols, T);
  } else if (T <= kMatvecMaxRows) {
    matvec(out, in, W, T);
  } else if (bf16_fast) {
    gemm_bf16_activations(out, in, W, T);
  } else if (W.dtype == DType::F32) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(T), static_cast<int>(W.rows),
                static_cast<int>(W.cols), 1.0f, in, static_cast<int>(W.cols), static_cast<const float*>(W.data),
                static_cast<int>(W.cols), 0.0f, out, static_cast<int>(W.rows));
  } else {
    gemm_widened(out, in, W, T);
  }
  if (bias) {
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t r = 0; r < W.rows; ++r) out[t * W.rows + r] += bias[r];
  }
}

}  // namespace pcm::cpu
