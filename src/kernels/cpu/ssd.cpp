#include "kernels/cpu/ssd.h"

#include <algorithm>
#include <cmath>

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

int64_t ssd_chunked_scratch_floats(int64_t Q, const SsdShape& s) { return s.G * Q * Q + 2 * s.H * Q; }

void ssd_chunked_forward(float* y, const SsdInputs& in, float* state, int64_t T, int64_t Q, const SsdShape& s,
                         float* scratch) {
  const int64_t heads_per_group = s.H / s.G;
  float* CB = scratch;                    // [G, Q, Q]: C_i · B_j within the chunk, shared by a group's heads
  float* cumsum = scratch + s.G * Q * Q;  // [H, Q]: running sum of dt * A within the chunk
  float* wdecay = cumsum + s.H * Q;       // [H, Q]: exp(cs_last - cs_j) * dt_j, weights for the state update
  for (int64_t c0 = 0; c0 < T; c0 += Q) {
    const int64_t q = std::min(Q, T - c0);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t g = 0; g < s.G; ++g) {
      for (int64_t i = 0; i < q; ++i) {
        const float* Ci = in.C + (c0 + i) * in.stride + g * s.N;
        for (int64_t j = 0; j <= i; ++j) {
          const float* Bj = in.B + (c0 + j) * in.stride + g * s.N;
          float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
          for (int64_t n = 0; n < s.N; ++n) acc += Ci[n] * Bj[n];
          CB[(g * Q + i) * Q + j] = acc;
        }
      }
    }
#pragma omp parallel for schedule(static)
    for (int64_t h = 0; h < s.H; ++h) {
      const int64_t g = h / heads_per_group;
      float* cs = cumsum + h * Q;
      float* wd = wdecay + h * Q;
      float run = 0.0f;
      for (int64_t i = 0; i < q; ++i) {
        run += in.dt[(c0 + i) * s.H + h] * in.A[h];
        cs[i] = run;
      }
      float* S = state + h * s.P * s.N;
      for (int64_t i = 0; i < q; ++i) {
        const int64_t t = c0 + i;
        const float* Ci = in.C + t * in.stride + g * s.N;
        const float* xi = in.x + t * in.stride + h * s.P;
        float* yi = y + t * s.H * s.P + h * s.P;
        // Inter-chunk: the state entering the chunk, decayed to position i, read out by C_i; plus D * x.
        const float carry = std::exp(cs[i]);
        for (int64_t p = 0; p < s.P; ++p) {
          const float* Sp = S + p * s.N;
          float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
          for (int64_t n = 0; n < s.N; ++n) acc += Sp[n] * Ci[n];
          yi[p] = carry * acc + in.D[h] * xi[p];
        }
        // Intra-chunk: (C·Bᵀ ∘ L) X with L_ij = exp(cs_i - cs_j) * dt_j for j <= i.
        const float* cb = CB + (g * Q + i) * Q;
        for (int64_t j = 0; j <= i; ++j) {
          const float w = cb[j] * std::exp(cs[i] - cs[j]) * in.dt[(c0 + j) * s.H + h];
          const float* xj = in.x + (c0 + j) * in.stride + h * s.P;
#pragma omp simd
          for (int64_t p = 0; p < s.P; ++p) yi[p] += w * xj[p];
        }
      }
      // State passing: S = exp(cs_last) S + sum_j exp(cs_last - cs_j) dt_j x_j ⊗ B_j.
      const float last = cs[q - 1];
      const float chunk_decay = std::exp(last);
      for (int64_t j = 0; j < q; ++j) wd[j] = std::exp(last - cs[j]) * in.dt[(c0 + j) * s.H + h];
      for (int64_t p = 0; p < s.P; ++p) {
        float* Sp = S + p * s.N;
#pragma omp simd
        for (int64_t n = 0; n < s.N; ++n) Sp[n] *= chunk_decay;
        for (int64_t j = 0; j < q; ++j) {
          const float coef = wd[j] * in.x[(c0 + j) * in.stride + h * s.P + p];
          const float* Bj = in.B + (c0 + j) * in.stride + g * s.N;
#pragma omp simd
          for (int64_t n = 0; n < s.N; ++n) Sp[n] += coef * Bj[n];
        }
      }
    }
  }
}

}  // namespace pcm::cpu
