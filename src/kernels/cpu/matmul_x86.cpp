#include "kernels/cpu/matmul_x86.h"

#include "kernels/cpu/avx512_intrinsics.h"

#include <algorithm>
#include <cstdlib>

#include "tensor/dtype.h"

#define PCM_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))
#define PCM_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

namespace pcm::cpu::x86 {

bool has_avx512() {
  static const bool ok = !std::getenv("PCM_NO_AVX512") && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  return ok;
}

bool has_avx512_bf16() {
  static const bool ok = has_avx512() && __builtin_cpu_supports("avx512bf16");
  return ok;
}

namespace {

// 16 bf16 values (masked) widened to fp32 exactly.
PCM_AVX512 inline __m512 load_bf16x16(const uint16_t* p, __mmask16 m) {
  __m256i h = _mm256_maskz_loadu_epi16(m, p);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// One weight row against T activation rows, U independent accumulators per row of activations.
// Rows are walked one after another, so each thread reads the weights as a single linear stream
// (interleaving several rows made one prefetch stream per row and ran slower from DRAM).
template <int T, int U>
PCM_AVX512 void matvec_row(float* out, const float* in, const uint16_t* w, int64_t r, int64_t rows, int64_t K) {
  __m512 acc[T * U];
#pragma GCC unroll 64
  for (int i = 0; i < T * U; ++i) acc[i] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 * U <= K; k += 16 * U) {
#pragma GCC unroll 8
    for (int u = 0; u < U; ++u) {
      const __m512 wv = load_bf16x16(w + k + 16 * u, 0xffff);
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t)
        acc[t * U + u] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(in + t * K + k + 16 * u), acc[t * U + u]);
    }
  }
  for (; k < K; k += 16) {
    const __mmask16 m = K - k >= 16 ? __mmask16(0xffff) : __mmask16((1u << (K - k)) - 1);
    const __m512 wv = load_bf16x16(w + k, m);
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) acc[t * U] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, in + t * K + k), acc[t * U]);
  }
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) {
    __m512 sum = acc[t * U];
#pragma GCC unroll 8
    for (int u = 1; u < U; ++u) sum = _mm512_add_ps(sum, acc[t * U + u]);
    out[t * rows + r] = _mm512_reduce_add_ps(sum);
  }
}

template <int T>
PCM_AVX512 void matvec_rows(float* out, const float* in, const uint16_t* W, int64_t rows, int64_t K) {
  constexpr int U = T == 1 ? 4 : T == 2 ? 4 : T <= 4 ? 2 : 1;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) matvec_row<T, U>(out, in, W + r * K, r, rows, K);
}

}  // namespace

void matvec_bf16_f32(float* out, const float* in, const uint16_t* W, int64_t rows, int64_t K, int64_t T) {
  switch (T) {
    case 1: return matvec_rows<1>(out, in, W, rows, K);
    case 2: return matvec_rows<2>(out, in, W, rows, K);
    case 3: return matvec_rows<3>(out, in, W, rows, K);
    case 4: return matvec_rows<4>(out, in, W, rows, K);
    case 5: return matvec_rows<5>(out, in, W, rows, K);
    case 6: return matvec_rows<6>(out, in, W, rows, K);
    case 7: return matvec_rows<7>(out, in, W, rows, K);
    default: return matvec_rows<8>(out, in, W, rows, K);
  }
}

namespace {

// One weight row against T bf16 activation rows: 32 products per vdpbf16ps, U accumulators per row.
template <int T, int U>
PCM_AVX512_BF16 void matvec_bf16_row(float* out, const uint16_t* in, const uint16_t* w, int64_t r, int64_t rows,
                                     int64_t K) {
  __m512 acc[T * U];
#pragma GCC unroll 64
  for (int i = 0; i < T * U; ++i) acc[i] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 32 * U <= K; k += 32 * U) {
#pragma GCC unroll 8
    for (int u = 0; u < U; ++u) {
      const __m512i wv = _mm512_loadu_si512(w + k + 32 * u);
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t)
        acc[t * U + u] = _mm512_dpbf16_ps(acc[t * U + u], (__m512bh)_mm512_loadu_si512(in + t * K + k + 32 * u),
                                          (__m512bh)wv);
    }
  }
  for (; k < K; k += 32) {
    const __mmask32 m = K - k >= 32 ? __mmask32(0xffffffffu) : __mmask32((1u << (K - k)) - 1);
    const __m512i wv = _mm512_maskz_loadu_epi16(m, w + k);
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t)
      acc[t * U] = _mm512_dpbf16_ps(acc[t * U], (__m512bh)_mm512_maskz_loadu_epi16(m, in + t * K + k), (__m512bh)wv);
  }
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) {
    __m512 sum = acc[t * U];
#pragma GCC unroll 8
    for (int u = 1; u < U; ++u) sum = _mm512_add_ps(sum, acc[t * U + u]);
    out[t * rows + r] = _mm512_reduce_add_ps(sum);
  }
}

template <int T>
PCM_AVX512_BF16 void matvec_bf16_rows(float* out, const uint16_t* in, const uint16_t* W, int64_t rows, int64_t K) {
  constexpr int U = T <= 2 ? 2 : 1;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) matvec_bf16_row<T, U>(out, in, W + r * K, r, rows, K);
}

}  // namespace

void matvec_bf16_bf16(float* out, const uint16_t* in_bf16, const uint16_t* W, int64_t rows, int64_t K, int64_t T) {
  switch (T) {
    case 1: return matvec_bf16_rows<1>(out, in_bf16, W, rows, K);
    case 2: return matvec_bf16_rows<2>(out, in_bf16, W, rows, K);
    case 3: return matvec_bf16_rows<3>(out, in_bf16, W, rows, K);
    case 4: return matvec_bf16_rows<4>(out, in_bf16, W, rows, K);
    case 5: return matvec_bf16_rows<5>(out, in_bf16, W, rows, K);
    case 6: return matvec_bf16_rows<6>(out, in_bf16, W, rows, K);
    case 7: return matvec_bf16_rows<7>(out, in_bf16, W, rows, K);
    default: return matvec_bf16_rows<8>(out, in_bf16, W, rows, K);
  }
}

PCM_AVX512_BF16 void convert_f32_to_bf16(uint16_t* out, const float* in, int64_t n) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(in + i + 16), _mm512_loadu_ps(in + i));
    _mm512_storeu_si512(out + i, (__m512i)v);
  }
  for (; i < n; ++i) out[i] = f32_to_bf16(in[i]);
}

}  // namespace pcm::cpu::x86
