#include "kernels/cpu/matmul_backward.h"

#include <cblas.h>

namespace pcm::cpu {

void matmul_backward(float* din, float* dW, float* dbias, const float* dout, const float* in, const float* W,
                     int64_t T, int64_t R, int64_t K) {
  if (T <= 0) return;
  const int t = static_cast<int>(T), r = static_cast<int>(R), k = static_cast<int>(K);
  if (din) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, t, k, r, 1.0f, dout, r, W, k, 0.0f, din, k);
  if (dW) cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, k, t, 1.0f, dout, r, in, k, 1.0f, dW, k);
  if (dbias) {
#pragma omp parallel for schedule(static) if (R * T > 65536)
    for (int64_t j = 0; j < R; ++j) {
      float acc = 0.0f;
      for (int64_t i = 0; i < T; ++i) acc += dout[i * R + j];
      dbias[j] += acc;
    }
  }
}

}  // namespace pcm::cpu
