// AVX2 + FMA matrix-vector products for CPUs without AVX-512 (chosen at run time): bf16 and Q8_0
// weights widened exactly to fp32, fp32 activations and accumulation — the same numbers as the
// AVX-512 kernels, half the vector width.
#include <immintrin.h>

#include <cstdlib>
#include <cstring>

#include "kernels/cpu/matmul_x86.h"
#include "tensor/dtype.h"

#define PCM_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace pcm::cpu::x86 {

bool has_avx2() {
  static const bool ok = !std::getenv("PCM_NO_AVX2") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
}

namespace {

PCM_AVX2 inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

PCM_AVX2 inline __m256 load_bf16x8(const uint16_t* p) {
  __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

template <int T>
PCM_AVX2 void bf16_rows(float* out, const float* in, const uint16_t* W, int64_t rows, int64_t K) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const uint16_t* w = W + r * K;
    __m256 acc[T][2];
    for (int t = 0; t < T; ++t) acc[t][0] = acc[t][1] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
      const __m256 w0 = load_bf16x8(w + k), w1 = load_bf16x8(w + k + 8);
      for (int t = 0; t < T; ++t) {
        acc[t][0] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(in + t * K + k), acc[t][0]);
        acc[t][1] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(in + t * K + k + 8), acc[t][1]);
      }
    }
    for (int t = 0; t < T; ++t) {
      float s = hsum(_mm256_add_ps(acc[t][0], acc[t][1]));
      for (int64_t kk = k; kk < K; ++kk) s += bf16_to_f32(w[kk]) * in[t * K + kk];
      out[t * rows + r] = s;
    }
  }
}

template <int T>
PCM_AVX2 void q8_rows(float* out, const float* in, const uint8_t* W, int64_t rows, int64_t K) {
  const size_t stride = static_cast<size_t>(K / kQ8BlockSize) * kQ8BlockBytes;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* w = W + static_cast<size_t>(r) * stride;
    __m256 acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < K / kQ8BlockSize; ++b, w += kQ8BlockBytes) {
      uint16_t d16;
      std::memcpy(&d16, w, 2);
      const __m256 d = _mm256_set1_ps(f16_to_f32(d16));
      for (int part = 0; part < 4; ++part) {
        __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(w + 2 + 8 * part));
        const __m256 wv = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)));
        const float* x = in + b * kQ8BlockSize + 8 * part;
        for (int t = 0; t < T; ++t) acc[t] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + t * K), acc[t]);
      }
    }
    for (int t = 0; t < T; ++t) out[t * rows + r] = hsum(acc[t]);
  }
}

}  // namespace

void matvec_bf16_f32_avx2(float* out, const float* in, const uint16_t* W, int64_t rows, int64_t K, int64_t T) {
  switch (T) {
    case 1: return bf16_rows<1>(out, in, W, rows, K);
    case 2: return bf16_rows<2>(out, in, W, rows, K);
    case 3: return bf16_rows<3>(out, in, W, rows, K);
    case 4: return bf16_rows<4>(out, in, W, rows, K);
    case 5: return bf16_rows<5>(out, in, W, rows, K);
    case 6: return bf16_rows<6>(out, in, W, rows, K);
    case 7: return bf16_rows<7>(out, in, W, rows, K);
    default: return bf16_rows<8>(out, in, W, rows, K);
  }
}

void matvec_q8_0_f32_avx2(float* out, const float* in, const uint8_t* W, int64_t rows, int64_t K, int64_t T) {
  switch (T) {
    case 1: return q8_rows<1>(out, in, W, rows, K);
    case 2: return q8_rows<2>(out, in, W, rows, K);
    case 3: return q8_rows<3>(out, in, W, rows, K);
    case 4: return q8_rows<4>(out, in, W, rows, K);
    case 5: return q8_rows<5>(out, in, W, rows, K);
    case 6: return q8_rows<6>(out, in, W, rows, K);
    case 7: return q8_rows<7>(out, in, W, rows, K);
    default: return q8_rows<8>(out, in, W, rows, K);
  }
}

}  // namespace pcm::cpu::x86
