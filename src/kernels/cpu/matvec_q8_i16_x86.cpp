// Decode over Q8_0 weights with the activations quantised to int16 per 32-value block: one vpdpwssd
// multiplies a block's 32 int8 weights (sign-extended to int16) by its 32 int16 activations into 16 int32
// lanes, which are scaled by the two blocks' scales in fp32. Why: widening every weight to fp32 (the exact
// kernel, matmul_q8_x86.cpp) costs ~19 vector uops per block and left decode compute-bound at ~50% of the
// bandwidth floor on 2 Zen 4 cores; this is ~10. The activations' rounding is at most 2^-16 of their
// block's largest magnitude, far under the bf16 rounding (2^-9 relative) of the fast bf16 path; llama.cpp
// quantises them to int8 (2^-8 of the block max).
#include "kernels/cpu/avx512_intrinsics.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/cpu/matmul_x86.h"
#include "tensor/dtype.h"

#define PCM_AVX512_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")))

namespace pcm::cpu::x86 {

namespace {

// x16[k] = round(x[k] / d_b) with d_b = max |x| over k's block / 32767 (0 for an all-zero block). A block
// holding NaN or Inf gets a NaN scale, so the outputs it touches are NaN as in the exact kernel.
void quantise_int16_blocks(int16_t* x16, float* dx, const float* x, int64_t K) {
  for (int64_t b = 0; b < K / kQ8BlockSize; ++b) {
    const float* xb = x + b * kQ8BlockSize;
    float m = 0.0f;
    bool finite = true;
    for (int i = 0; i < kQ8BlockSize; ++i) {
      finite = finite && std::isfinite(xb[i]);
      m = std::max(m, std::fabs(xb[i]));
    }
    if (!finite) m = 0.0f;
    const float inv = m > 0.0f ? 32767.0f / m : 0.0f;
    dx[b] = finite ? m / 32767.0f : std::numeric_limits<float>::quiet_NaN();
    for (int i = 0; i < kQ8BlockSize; ++i) x16[b * kQ8BlockSize + i] = static_cast<int16_t>(std::lrintf(xb[i] * inv));
  }
}

// One block's 32 products into acc: 256-bit vectors throughout, since Zen 4 runs 512-bit operations as two
// halves and the 512-bit sign extension crosses lanes; each 16-weight half is one in-lane vpmovsxbw and one
// vpdpwssd (the int32 sums stay under 2^31: 32 * 128 * 32767).
template <int T>
PCM_AVX512_VNNI inline void q8_block(__m256 (&acc)[T], const int16_t* x16, const float* dx, const uint8_t* w, int64_t b,
                                     int64_t blocks, int64_t K) {
  uint16_t d16;
  std::memcpy(&d16, w, 2);
  const float dw = _cvtsh_ss(d16);
  const __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2)));
  const __m256i w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 18)));
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) {
    const int16_t* xb = x16 + t * K + b * kQ8BlockSize;
    __m256i dot = _mm256_dpwssd_epi32(_mm256_setzero_si256(), w0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb)));
    dot = _mm256_dpwssd_epi32(dot, w1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb + 16)));
    acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(dw * dx[t * blocks + b]), acc[t]);
  }
}

template <int T>
PCM_AVX512_VNNI void q8_row(float* out, const int16_t* x16, const float* dx, const uint8_t* w, int64_t r, int64_t rows,
                            int64_t K) {
  const int64_t blocks = K / kQ8BlockSize;
  __m256 even[T], odd[T];  // two chains of fp32 adds, so consecutive blocks do not wait on each other
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) even[t] = odd[t] = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= blocks; b += 2, w += 2 * kQ8BlockBytes) {
    q8_block<T>(even, x16, dx, w, b, blocks, K);
    q8_block<T>(odd, x16, dx, w + kQ8BlockBytes, b + 1, blocks, K);
  }
  if (b < blocks) q8_block<T>(even, x16, dx, w, b, blocks, K);
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) {
    const __m256 s = _mm256_add_ps(even[t], odd[t]);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    out[t * rows + r] = _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
  }
}

template <int T>
void q8_rows(float* out, const int16_t* x16, const float* dx, const uint8_t* W, int64_t rows, int64_t K) {
  const size_t row_stride = static_cast<size_t>(K / kQ8BlockSize) * kQ8BlockBytes;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) q8_row<T>(out, x16, dx, W + r * row_stride, r, rows, K);
}

}  // namespace

bool has_avx512_vnni() {
  static const bool ok = has_avx512() && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("f16c");
  return ok;
}

void matvec_q8_0_i16(float* out, const float* in, const uint8_t* W, int64_t rows, int64_t K, int64_t T) {
  static thread_local std::vector<int16_t> x16;  // grows once, reused by every call
  static thread_local std::vector<float> dx;
  x16.resize(static_cast<size_t>(T * K));
  dx.resize(static_cast<size_t>(T * (K / kQ8BlockSize)));
  for (int64_t t = 0; t < T; ++t)
    quantise_int16_blocks(x16.data() + t * K, dx.data() + t * (K / kQ8BlockSize), in + t * K, K);
  switch (T) {
    case 1: return q8_rows<1>(out, x16.data(), dx.data(), W, rows, K);
    case 2: return q8_rows<2>(out, x16.data(), dx.data(), W, rows, K);
    case 3: return q8_rows<3>(out, x16.data(), dx.data(), W, rows, K);
    case 4: return q8_rows<4>(out, x16.data(), dx.data(), W, rows, K);
    case 5: return q8_rows<5>(out, x16.data(), dx.data(), W, rows, K);
    case 6: return q8_rows<6>(out, x16.data(), dx.data(), W, rows, K);
    case 7: return q8_rows<7>(out, x16.data(), dx.data(), W, rows, K);
    default: return q8_rows<8>(out, x16.data(), dx.data(), W, rows, K);
  }
}

}  // namespace pcm::cpu::x86
