// Prefill projections with bf16 activations: out[T, rows] = in[T, K] · W[rows, K]ᵀ on vdpbf16ps, fp32 sums.
// Outer-product micro-kernel: 48 weight rows (three 16-lane vectors) × 8 tokens in 24 accumulators; each step
// takes one pair of k, broadcasts each token's pair and multiplies it into the 48 rows' pairs. vdpbf16ps wants
// the rows' pairs side by side, so every 48-row panel of W is first repacked as [K/2][48] pairs into a
// per-thread buffer (once per call and panel, then reused by all T tokens; the weights themselves stay as
// mapped). Why this form: the dot-product kernel it replaced (4 rows × 6 tokens, a 16-lane horizontal sum
// per output) ran at ~55% of the vdpbf16ps rate on Zen 4 — its 40 KB working set missed the 32 KB L1 — and
// this one at 86-91% (1.3B and 370m projections, T = 512, 2 threads).
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/cpu/matmul_x86.h"

#define PCM_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

namespace pcm::cpu::x86 {
namespace {

constexpr int kVecs = 3, kPanel = 16 * kVecs, kTokens = 8;

// 16 x 16 32-bit elements transposed in registers (three rounds of unpack/shuffle). GCC 12's unpack and shuffle
// intrinsics pass a self-initialised "undefined" vector as their unused merge source, which -Wmaybe-uninitialized
// reports at every inlined use (GCC bug 105593); nothing here is uninitialised.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
PCM_AVX512_BF16 void transpose16(__m512i (&r)[16]) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  for (int i = 0; i < 16; i += 8)
    for (int j = 0; j < 4; ++j) {
      t[i + j] = _mm512_shuffle_i32x4(r[i + j], r[i + j + 4], 0x88);
      t[i + j + 4] = _mm512_shuffle_i32x4(r[i + j], r[i + j + 4], 0xdd);
    }
  for (int j = 0; j < 8; ++j) {
    r[j] = _mm512_shuffle_i32x4(t[j], t[j + 8], 0x88);
    r[j + 8] = _mm512_shuffle_i32x4(t[j], t[j + 8], 0xdd);
  }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// P[k2 * kPanel + r] = (W[r0 + r, 2 k2], W[r0 + r, 2 k2 + 1]) as one 32-bit pair, low half first; zero for rows
// past `rows` and for the odd column past K. Whole groups of 16 rows x 16 pairs go through transpose16 (the
// scalar copy was ~8% of a 1.3B prefill); the edges element by element.
PCM_AVX512_BF16 void pack_panel(uint32_t* P, const uint16_t* W, int64_t r0, int64_t rows, int64_t K) {
  const int64_t pairs = (K + 1) / 2, full = K / 2, blocked = full / 16 * 16;
  for (int v = 0; v < kVecs; ++v) {
    const int64_t g0 = r0 + 16 * v;  // first row of this group of 16
    int64_t k2 = 0;
    if (g0 + 16 <= rows) {
      for (; k2 < blocked; k2 += 16) {
        __m512i r[16];
        for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_si512(W + (g0 + i) * K + 2 * k2);
        transpose16(r);
        for (int j = 0; j < 16; ++j) _mm512_storeu_si512(P + (k2 + j) * kPanel + 16 * v, r[j]);
      }
    }
    for (int i = 0; i < 16; ++i) {
      uint32_t* dst = P + 16 * v + i;
      if (g0 + i >= rows) {
        for (int64_t k = k2; k < pairs; ++k) dst[k * kPanel] = 0;
        continue;
      }
      const uint16_t* w = W + (g0 + i) * K;
      for (int64_t k = k2; k < full; ++k) {
        uint32_t pair;
        std::memcpy(&pair, w + 2 * k, 4);  // rows of odd K are only 2-byte aligned
        dst[k * kPanel] = pair;
      }
      if (pairs > full) dst[full * kPanel] = w[K - 1];
    }
  }
}

// Lanes of vector v of the panel at r0 that are real rows.
__mmask16 row_mask(int64_t r0, int v, int64_t rows) {
  const int64_t n = rows - r0 - 16 * v;
  return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}

template <int T>
PCM_AVX512_BF16 void panel_tokens(float* out, const uint16_t* in, const uint32_t* P, int64_t r0, int64_t t0,
                                  int64_t rows, int64_t K) {
  __m512 acc[T][kVecs];
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t)
#pragma GCC unroll 3
    for (int v = 0; v < kVecs; ++v) acc[t][v] = _mm512_setzero_ps();
  const uint16_t* x = in + t0 * K;
  const int64_t full = K / 2;
  for (int64_t k2 = 0; k2 < full; ++k2) {
    __m512i w[kVecs];
#pragma GCC unroll 3
    for (int v = 0; v < kVecs; ++v) w[v] = _mm512_loadu_si512(P + k2 * kPanel + 16 * v);
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      int32_t pair;
      std::memcpy(&pair, x + t * K + 2 * k2, 4);
      const __m512bh xb = (__m512bh)_mm512_set1_epi32(pair);
#pragma GCC unroll 3
      for (int v = 0; v < kVecs; ++v) acc[t][v] = _mm512_dpbf16_ps(acc[t][v], xb, (__m512bh)w[v]);
    }
  }
  if (K % 2) {  // the last column alone: the pair's high half is zero in P and must be zero here too
    __m512i w[kVecs];
#pragma GCC unroll 3
    for (int v = 0; v < kVecs; ++v) w[v] = _mm512_loadu_si512(P + full * kPanel + 16 * v);
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      const __m512bh xb = (__m512bh)_mm512_set1_epi32(x[t * K + K - 1]);
#pragma GCC unroll 3
      for (int v = 0; v < kVecs; ++v) acc[t][v] = _mm512_dpbf16_ps(acc[t][v], xb, (__m512bh)w[v]);
    }
  }
#pragma GCC unroll 3
  for (int v = 0; v < kVecs; ++v) {
    const __mmask16 m = row_mask(r0, v, rows);
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(out + (t0 + t) * rows + r0 + 16 * v, m, acc[t][v]);
  }
}

template <int T = kTokens>
void panel_tail(float* out, const uint16_t* in, const uint32_t* P, int64_t r0, int64_t t0, int64_t rows, int64_t K,
                int64_t n) {
  if constexpr (T > 1) {
    if (n == T - 1) return panel_tokens<T - 1>(out, in, P, r0, t0, rows, K);
    return panel_tail<T - 1>(out, in, P, r0, t0, rows, K, n);
  }
}

}  // namespace

void gemm_bf16_bf16(float* out, const uint16_t* in_bf16, const uint16_t* W, int64_t rows, int64_t K, int64_t T) {
  const int64_t panels = (rows + kPanel - 1) / kPanel;
#pragma omp parallel
  {
    static thread_local std::vector<uint32_t> packed;  // grows once per thread, reused by every call
    packed.resize(static_cast<size_t>((K + 1) / 2 * kPanel));
#pragma omp for schedule(dynamic, 1)
    for (int64_t p = 0; p < panels; ++p) {
      const int64_t r0 = p * kPanel;
      pack_panel(packed.data(), W, r0, rows, K);
      int64_t t = 0;
      for (; t + kTokens <= T; t += kTokens) panel_tokens<kTokens>(out, in_bf16, packed.data(), r0, t, rows, K);
      if (t < T) panel_tail(out, in_bf16, packed.data(), r0, t, rows, K, T - t);
    }
  }
}

}  // namespace pcm::cpu::x86
