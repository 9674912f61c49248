// AVX-512 matrix-vector products over Q8_0 weights with fp32 activations: int8 values widened to
// fp32 and scaled per block, so the only error is the weights' own quantisation (llama.cpp also
// quantises the activations to int8; we keep them exact — decode is bandwidth-bound either way).
#include "kernels/cpu/avx512_intrinsics.h"

#include <cstring>

#include "kernels/cpu/matmul_x86.h"
#include "tensor/dtype.h"

#define PCM_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,f16c")))

namespace pcm::cpu::x86 {

namespace {

template <int T>
PCM_AVX512 void matvec_q8_row(float* out, const float* in, const uint8_t* w, int64_t r, int64_t rows, int64_t K) {
  __m512 acc[T];
#pragma GCC unroll 16
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  const int64_t blocks = K / kQ8BlockSize;
  for (int64_t b = 0; b < blocks; ++b, w += kQ8BlockBytes) {
    uint16_t d16;
    std::memcpy(&d16, w, 2);
    const __m512 d = _mm512_set1_ps(_cvtsh_ss(d16));  // F16C, not the portable scalar conversion
    const __m512 q0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)(w + 2))));
    const __m512 q1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)(w + 18))));
    const float* x = in + b * kQ8BlockSize;
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      // The block's integer-weighted sum first, then one multiply by its scale.
      const __m512 part = _mm512_fmadd_ps(q1, _mm512_loadu_ps(x + t * K + 16), _mm512_mul_ps(q0, _mm512_loadu_ps(x + t * K)));
      acc[t] = _mm512_fmadd_ps(d, part, acc[t]);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) out[t * rows + r] = _mm512_reduce_add_ps(acc[t]);
}

template <int T>
PCM_AVX512 void matvec_q8_rows(float* out, const float* in, const uint8_t* W, int64_t rows, int64_t K) {
  const size_t row_stride = static_cast<size_t>(K / kQ8BlockSize) * kQ8BlockBytes;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) matvec_q8_row<T>(out, in, W + r * row_stride, r, rows, K);
}

}  // namespace

void matvec_q8_0_f32(float* out, const float* in, const uint8_t* W, int64_t rows, int64_t K, int64_t T) {
  switch (T) {
    case 1: return matvec_q8_rows<1>(out, in, W, rows, K);
    case 2: return matvec_q8_rows<2>(out, in, W, rows, K);
    case 3: return matvec_q8_rows<3>(out, in, W, rows, K);
    case 4: return matvec_q8_rows<4>(out, in, W, rows, K);
    case 5: return matvec_q8_rows<5>(out, in, W, rows, K);
    case 6: return matvec_q8_rows<6>(out, in, W, rows, K);
    case 7: return matvec_q8_rows<7>(out, in, W, rows, K);
    default: return matvec_q8_rows<8>(out, in, W, rows, K);
  }
}

}  // namespace pcm::cpu::x86
