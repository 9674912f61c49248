// Chunked SSD backward. Per chunk of q positions, head h, with cs = cumsum(dt·A), S0 the entering state:
//   Y     = diag(e^cs) C S0ᵀ + D X + M X,  M_ij = (C Bᵀ)_ij e^(cs_i − cs_j) dt_j  (j <= i)
//   S_end = e^cs_last S0 + Xwᵀ B,          Xw_j = e^(cs_last − cs_j) dt_j X_j
// differentiated term by term; dcs is turned into dt and A gradients at the end of each chunk.
#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/activations.h"
#include "kernels/cpu/ssd_backward.h"

namespace pcm::cpu {

void ssd_chunked_backward(const SsdGrads& gr, const float* dy, const SsdInputs& in, const float* state0, int64_t T,
                          int64_t Q, const SsdShape& s, float* scratch) {
  if (T <= 0) return;
  const int64_t P = s.P, N = s.N, PN = s.P * s.N, H = s.H, hpg = s.H / s.G;
  const int64_t n_chunks = (T + Q - 1) / Q;
  const int ld = static_cast<int>(in.stride), ldg = static_cast<int>(gr.stride), ldy = static_cast<int>(H * P),
            ldh = static_cast<int>(H * N), Pi = static_cast<int>(P), Ni = static_cast<int>(N);
  float* dBh = scratch;              // [T, H, N]
  float* dCh = scratch + T * H * N;  // [T, H, N]
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t h = 0; h < H; ++h) {
    static thread_local std::vector<float> local;
    local.resize(static_cast<size_t>(n_chunks * PN + 2 * PN + 3 * Q * Q + 3 * Q * P + 8 * Q));
    float* snap = local.data();
    float* dS = snap + n_chunks * PN;
    float* dS0 = dS + PN;
    float* CB = dS0 + PN;
    float* M = CB + Q * Q;
    float* dM = M + Q * Q;
    float* Z = dM + Q * Q;  // C S0ᵀ, later reused
    float* Xw = Z + Q * P;
    float* dXw = Xw + Q * P;
    float* cs = dXw + Q * P;
    float* cum = cs + Q;  // cumulative dt
    float* dtc = cum + Q;
    float* w = dtc + Q;
    float* dcs = w + Q;
    float* ddt = dcs + Q;
    const int64_t g = h / hpg;
    const float A = in.A[h], D = in.D[h];
    // cs, cum, dtc, w (and Xw) for the chunk at t0.
    auto prepare = [&](int64_t t0, int64_t q) {
      float run = 0.0f, c = 0.0f;
      for (int64_t i = 0; i < q; ++i) {
        dtc[i] = in.dt[(t0 + i) * H + h];
        run += dtc[i] * A;
        c += dtc[i];
        cs[i] = run;
        cum[i] = c;
      }
      for (int64_t j = 0; j < q; ++j) {
        w[j] = exp_nonpositive(cs[q - 1] - cs[j]) * dtc[j];
        const float* xj = in.x + (t0 + j) * in.stride + h * P;
        for (int64_t p = 0; p < P; ++p) Xw[j * P + p] = w[j] * xj[p];
      }
    };
    // Chunk entry states.
    if (state0) std::memcpy(snap, state0 + h * PN, sizeof(float) * PN);
    else std::fill(snap, snap + PN, 0.0f);
    for (int64_t c = 0; c + 1 < n_chunks; ++c) {
      const int64_t t0 = c * Q;
      prepare(t0, Q);
      float* next = snap + (c + 1) * PN;
      std::memcpy(next, snap + c * PN, sizeof(float) * PN);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Pi, Ni, static_cast<int>(Q), 1.0f, Xw, Pi,
                  in.B + t0 * in.stride + g * N, ld, exp_nonpositive(cs[Q - 1]), next, Ni);
    }
    std::fill(dS, dS + PN, 0.0f);
    float dA = 0.0f, dD = 0.0f;
    for (int64_t c = n_chunks - 1; c >= 0; --c) {
      const int64_t t0 = c * Q, q = std::min(Q, T - t0);
      const int qi = static_cast<int>(q);
      prepare(t0, q);
      const float* S0 = snap + c * PN;
      const float* X = in.x + t0 * in.stride + h * P;
      const float* B = in.B + t0 * in.stride + g * N;
      const float* C = in.C + t0 * in.stride + g * N;
      const float* dY = dy + t0 * H * P + h * P;
      float* dX = gr.dx + t0 * gr.stride + h * P;
      float* dBc = dBh + (t0 * H + h) * N;
      float* dCc = dCh + (t0 * H + h) * N;
      std::fill(dcs, dcs + q, 0.0f);
      std::fill(ddt, ddt + q, 0.0f);
      // Skip term: Y += D X.
      for (int64_t i = 0; i < q; ++i)
        for (int64_t p = 0; p < P; ++p) {
          dX[i * gr.stride + p] = D * dY[i * H * P + p];
          dD += dY[i * H * P + p] * X[i * in.stride + p];
        }
      // Inter-chunk term: Y_i += e^cs_i (C S0ᵀ)_i.
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, qi, Pi, Ni, 1.0f, C, ld, S0, Ni, 0.0f, Z, Pi);
      for (int64_t i = 0; i < q; ++i) {
        const float e = exp_nonpositive(cs[i]);
        float dot = 0.0f;
        for (int64_t p = 0; p < P; ++p) {
          dot += dY[i * H * P + p] * Z[i * P + p];
          Z[i * P + p] = e * dY[i * H * P + p];  // Z becomes dZ
        }
        dcs[i] += e * dot;
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, qi, Ni, Pi, 1.0f, Z, Pi, S0, Ni, 0.0f, dCc, ldh);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Pi, Ni, qi, 1.0f, Z, Pi, C, ld, 0.0f, dS0, Ni);
      // Intra-chunk term: Y += M X.
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, qi, qi, Ni, 1.0f, C, ld, B, ld, 0.0f, CB, qi);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, qi, qi, Pi, 1.0f, dY, ldy, X, ld, 0.0f, dM, qi);
      for (int64_t i = 0; i < q; ++i) {
        for (int64_t j = 0; j <= i; ++j) {
          const int64_t k = i * q + j;
          const float L = exp_nonpositive(cs[i] - cs[j]);
          const float m = CB[k] * L * dtc[j];
          const float gL = dM[k] * L;
          M[k] = m;
          ddt[j] += gL * CB[k];
          const float tcs = dM[k] * m;
          dcs[i] += tcs;
          dcs[j] -= tcs;
          dM[k] = gL * dtc[j];  // dM becomes dCB
        }
        for (int64_t j = i + 1; j < q; ++j) M[i * q + j] = dM[i * q + j] = 0.0f;
      }
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, qi, Pi, qi, 1.0f, M, qi, dY, ldy, 1.0f, dX, ldg);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, qi, Ni, qi, 1.0f, dM, qi, B, ld, 1.0f, dCc, ldh);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, qi, Ni, qi, 1.0f, dM, qi, C, ld, 0.0f, dBc, ldh);
      // State passed on: S_end = e^cs_last S0 + Xwᵀ B.
      const float el = exp_nonpositive(cs[q - 1]);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, qi, Pi, Ni, 1.0f, B, ld, dS, Ni, 0.0f, dXw, Pi);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, qi, Ni, Pi, 1.0f, Xw, Pi, dS, Ni, 1.0f, dBc, ldh);
      for (int64_t j = 0; j < q; ++j) {
        float dw = 0.0f;
        for (int64_t p = 0; p < P; ++p) {
          dw += dXw[j * P + p] * X[j * in.stride + p];
          dX[j * gr.stride + p] += w[j] * dXw[j * P + p];
        }
        ddt[j] += dw * exp_nonpositive(cs[q - 1] - cs[j]);
        const float tcs = dw * w[j];
        dcs[q - 1] += tcs;
        dcs[j] -= tcs;
      }
      float dss = 0.0f;
      for (int64_t k = 0; k < PN; ++k) {
        dss += dS[k] * S0[k];
        dS[k] = el * dS[k] + dS0[k];
      }
      dcs[q - 1] += el * dss;
      // cs_i = A Σ_{k<=i} dt_k.
      float suffix = 0.0f;
      for (int64_t i = q - 1; i >= 0; --i) {
        suffix += dcs[i];
        gr.ddt[(t0 + i) * H + h] = ddt[i] + A * suffix;
        dA += dcs[i] * cum[i];
      }
    }
    if (gr.dstate0) std::memcpy(gr.dstate0 + h * PN, dS, sizeof(float) * PN);
    gr.dA[h] += dA;
    gr.dD[h] += dD;
  }
#pragma omp parallel for schedule(static) if (T > 1)
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t g = 0; g < s.G; ++g) {
      float* dB = gr.dB + t * gr.stride + g * N;
      float* dC = gr.dC + t * gr.stride + g * N;
      std::fill(dB, dB + N, 0.0f);
      std::fill(dC, dC + N, 0.0f);
      for (int64_t h = g * hpg; h < (g + 1) * hpg; ++h) {
        const float* b = dBh + (t * H + h) * N;
        const float* c = dCh + (t * H + h) * N;
        for (int64_t n = 0; n < N; ++n) {
          dB[n] += b[n];
          dC[n] += c[n];
        }
      }
    }
  }
}

}  // namespace pcm::cpu
