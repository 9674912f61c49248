#include "kernels/cpu/ssd.h"

#include <algorithm>
#include <cblas.h>

#include <cmath>
#include <vector>

#include "kernels/cpu/activations.h"

namespace pcm::cpu {

void ssd_recurrent_forward(float* y, const SsdInputs& in, float* state, int64_t T, const SsdShape& s) {
  const int64_t heads_per_group = s.H / s.G;
#pragma omp parallel for schedule(static)
  for (int64_t h = 0; h < s.H; ++h) {
    const int64_t g = h / heads_per_group;
    float* S = state + h * s.P * s.N;
    for (int64_t t = 0; t < T; ++t) {
      const float dt = in.dt[t * s.H + h];
      const float decay = std::exp(dt * in.A[h]);
      const float* x = in.x + t * in.stride + h * s.P;
      const float* B = in.B + t * in.stride + g * s.N;
      const float* C = in.C + t * in.stride + g * s.N;
      float* yt = y + t * s.H * s.P + h * s.P;
      for (int64_t p = 0; p < s.P; ++p) {
        float* Sp = S + p * s.N;
        const float dx = dt * x[p];
        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
        for (int64_t n = 0; n < s.N; ++n) {
          Sp[n] = decay * Sp[n] + dx * B[n];
          acc += Sp[n] * C[n];
        }
        yt[p] = acc + in.D[h] * x[p];
      }
    }
  }
}

namespace {
constexpr int64_t kTriBlock = 64;  // row block of the triangular products
}  // namespace

int64_t ssd_chunked_scratch_floats(int64_t Q, const SsdShape& s) { return s.G * Q * Q; }

// Per chunk of q <= Q positions, with cs = running sum of dt * A inside the chunk:
//   CB = C Bᵀ                                   [q, q]  once per group
//   M  = CB ∘ L,  L_ij = exp(cs_i - cs_j) dt_j  (j <= i, else 0)
//   Y  = diag(exp(cs)) C Sᵀ + D X + M X         inter-chunk + skip + intra-chunk
//   S  = exp(cs_last) S + (diag(exp(cs_last - cs) dt) X)ᵀ B
// Each product is a small sgemm (single-threaded inside the per-head parallel loop).
void ssd_chunked_forward(float* y, const SsdInputs& in, float* state, int64_t T, int64_t Q, const SsdShape& s,
                         float* scratch) {
  const int64_t heads_per_group = s.H / s.G;
  const int ld = static_cast<int>(in.stride), ldy = static_cast<int>(s.H * s.P);
  const int P = static_cast<int>(s.P), N = static_cast<int>(s.N);
  for (int64_t c0 = 0; c0 < T; c0 += Q) {
    const int64_t q = std::min(Q, T - c0);
    const int qi = static_cast<int>(q);
    // Only the lower triangle of C Bᵀ and of M is ever used: row block [i0, i1) needs columns < i1,
    // which skips ~40% of those products at Q = 256.
    const int64_t row_blocks = (q + kTriBlock - 1) / kTriBlock;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t g = 0; g < s.G; ++g)
      for (int64_t b = 0; b < row_blocks; ++b) {
        const int i0 = static_cast<int>(b * kTriBlock), i1 = static_cast<int>(std::min(q, (b + 1) * kTriBlock));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, i1 - i0, i1, N, 1.0f,
                    in.C + (c0 + i0) * in.stride + g * s.N, ld, in.B + c0 * in.stride + g * s.N, ld, 0.0f,
                    scratch + g * Q * Q + i0 * Q, static_cast<int>(Q));
      }
#pragma omp parallel for schedule(static)
    for (int64_t h = 0; h < s.H; ++h) {
      static thread_local std::vector<float> local;  // M [Q, Q], Xw [Q, P], cs [Q], e [Q]
      local.resize(static_cast<size_t>(Q * Q + Q * s.P + 2 * Q));
      float* M = local.data();
      float* Xw = M + Q * Q;
      float* cs = Xw + Q * s.P;
      float* dt = cs + Q;
      const int64_t g = h / heads_per_group;
      const float* X = in.x + c0 * in.stride + h * s.P;
      const float* B = in.B + c0 * in.stride + g * s.N;
      const float* C = in.C + c0 * in.stride + g * s.N;
      float* Y = y + c0 * s.H * s.P + h * s.P;
      float* S = state + h * s.P * s.N;
      const float* CB = scratch + g * Q * Q;
      float run = 0.0f;
      for (int64_t i = 0; i < q; ++i) {
        dt[i] = in.dt[(c0 + i) * s.H + h];
        run += dt[i] * in.A[h];
        cs[i] = run;
      }
      for (int64_t i = 0; i < q; ++i) {
        float* Mi = M + i * q;
        const float* CBi = CB + i * Q;
        const float csi = cs[i];
#pragma omp simd
        for (int64_t j = 0; j <= i; ++j) Mi[j] = CBi[j] * exp_nonpositive(csi - cs[j]) * dt[j];
        const int64_t block_end = std::min(q, (i / kTriBlock + 1) * kTriBlock);  // columns the products read
        for (int64_t j = i + 1; j < block_end; ++j) Mi[j] = 0.0f;
      }
      // Y = C Sᵀ, then rows scaled by exp(cs_i), plus D x.
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, qi, P, N, 1.0f, C, ld, S, N, 0.0f, Y, ldy);
      for (int64_t i = 0; i < q; ++i) {
        const float e = exp_nonpositive(cs[i]);
        const float* xi = X + i * in.stride;
        float* yi = Y + i * s.H * s.P;
#pragma omp simd
        for (int64_t p = 0; p < s.P; ++p) yi[p] = e * yi[p] + in.D[h] * xi[p];
      }
      for (int64_t b = 0; b < row_blocks; ++b) {
        const int i0 = static_cast<int>(b * kTriBlock), i1 = static_cast<int>(std::min(q, (b + 1) * kTriBlock));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, i1 - i0, P, i1, 1.0f, M + i0 * q, qi, X, ld, 1.0f,
                    Y + i0 * s.H * s.P, ldy);
      }
      const float last = cs[q - 1];
      for (int64_t j = 0; j < q; ++j) {
        const float w = exp_nonpositive(last - cs[j]) * dt[j];
        const float* xj = X + j * in.stride;
#pragma omp simd
        for (int64_t p = 0; p < s.P; ++p) Xw[j * s.P + p] = w * xj[p];
      }
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, P, N, qi, 1.0f, Xw, P, B, ld, exp_nonpositive(last), S, N);
    }
  }
}

}  // namespace pcm::cpu
