#include "kernels/cpu/loss.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/activations.h"

namespace pcm::cpu {

int64_t lm_head_xent_scratch_floats(int64_t T, int64_t vocab_chunk) { return T * vocab_chunk + 3 * T; }

double lm_head_xent(float* dx, float* dW, const float* x, const float* W, const int32_t* targets, int64_t T,
                    int64_t V, int64_t d, int64_t vocab_chunk, float* scratch) {
  if (T <= 0) return 0.0;
  const int64_t Vc = std::min(vocab_chunk, V);
  float* logits = scratch;          // [T, Vc]
  float* row_max = logits + T * Vc;  // running max
  float* row_sum = row_max + T;      // running sum of exp(logit - max)
  float* row_tgt = row_sum + T;      // target logit
  std::fill(row_max, row_max + T, -std::numeric_limits<float>::infinity());
  std::fill(row_sum, row_sum + T, 0.0f);
  const int t = static_cast<int>(T), dd = static_cast<int>(d);
  for (int64_t v0 = 0; v0 < V; v0 += Vc) {
    const int64_t n = std::min(Vc, V - v0);
    const int ni = static_cast<int>(n);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t, ni, dd, 1.0f, x, dd, W + v0 * d, dd, 0.0f, logits, ni);
#pragma omp parallel for schedule(static) if (T * n > 65536)
    for (int64_t i = 0; i < T; ++i) {
      const float* l = logits + i * n;
      float m = row_max[i];
      for (int64_t j = 0; j < n; ++j) m = std::max(m, l[j]);
      float s = 0.0f;
      for (int64_t j = 0; j < n; ++j) s += exp_nonpositive(l[j] - m);  // l - m <= 0
      row_sum[i] = row_sum[i] * std::exp(row_max[i] - m) + s;
      row_max[i] = m;
      const int64_t tg = targets[i] - v0;
      if (tg >= 0 && tg < n) row_tgt[i] = l[tg];
    }
  }
  double loss = 0.0;
  for (int64_t i = 0; i < T; ++i) {
    row_max[i] += std::log(row_sum[i]);  // row_max now holds the log-sum-exp
    loss += static_cast<double>(row_max[i]) - row_tgt[i];
  }
  if (!dx && !dW) return loss;
  for (int64_t v0 = 0; v0 < V; v0 += Vc) {
    const int64_t n = std::min(Vc, V - v0);
    const int ni = static_cast<int>(n);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t, ni, dd, 1.0f, x, dd, W + v0 * d, dd, 0.0f, logits, ni);
#pragma omp parallel for schedule(static) if (T * n > 65536)
    for (int64_t i = 0; i < T; ++i) {  // logits -> softmax - onehot
      float* l = logits + i * n;
      const float lse = row_max[i];
      for (int64_t j = 0; j < n; ++j) l[j] = exp_nonpositive(l[j] - lse);  // l <= lse
      const int64_t tg = targets[i] - v0;
      if (tg >= 0 && tg < n) l[tg] -= 1.0f;
    }
    if (dx)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, t, dd, ni, 1.0f, logits, ni, W + v0 * d, dd,
                  v0 == 0 ? 0.0f : 1.0f, dx, dd);
    if (dW)
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ni, dd, t, 1.0f, logits, ni, x, dd, 1.0f, dW + v0 * d, dd);
  }
  return loss;
}

}  // namespace pcm::cpu
