// Backward of the causal depthwise conv1d + SiLU over packed documents, of dt = clamp(softplus(.)), and
// A = -exp(A_log).
#include <algorithm>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/train_ops.h"

namespace pcm::cuda {
namespace {

constexpr int kMaxK = 8, kSplits = 64;

__device__ __forceinline__ float sigmoid_f(float z) { return 1.0f / (1.0f + expf(-z)); }

// dpre[t, c] = dout[t, c] · silu'(pre[t, c]), the pre-activation recomputed from the inputs.
__global__ void conv_dpre_kernel(float* dpre, const float* dout, const float* in, int64_t in_stride, const float* w,
                                 const float* bias, const int32_t* doc_begin, int64_t T, int64_t C, int K) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= T * C) return;
  const int64_t t = i / C, c = i % C, b0 = doc_begin[t];
  float pre = bias ? bias[c] : 0.0f;
  for (int k = 0; k < K; ++k) {
    const int64_t j = t - K + 1 + k;
    if (j >= b0) pre += w[c * K + k] * in[j * in_stride + c];
  }
  const float sg = sigmoid_f(pre);
  dpre[i] = dout[i] * sg * (1.0f + pre * (1.0f - sg));
}

// din[t, c] = sum_k w[c, k] · dpre[t + K - 1 - k, c] over later rows of the same document.
__global__ void conv_din_kernel(float* din, int64_t din_stride, const float* dpre, const float* w,
                                const int32_t* doc_begin, int64_t T, int64_t C, int K) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= T * C) return;
  const int64_t t = i / C, c = i % C;
  float acc = 0.0f;
  for (int k = 0; k < K; ++k) {
    const int64_t j = t + K - 1 - k;
    if (j < T && doc_begin[j] <= t) acc += w[c * K + k] * dpre[j * C + c];
  }
  din[t * din_stride + c] = acc;
}

// partial[split][c * K + k] = sum over the split's rows of dpre[t, c] · in[t - K + 1 + k, c].
__global__ void conv_dw_partial_kernel(float* partial, const float* dpre, const float* in, int64_t in_stride,
                                       const int32_t* doc_begin, int64_t T, int64_t C, int K) {
  const int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  const int64_t per = (T + kSplits - 1) / kSplits, t0 = blockIdx.y * per, t1 = min(T, t0 + per);
  float acc[kMaxK];
#pragma unroll
  for (int k = 0; k < kMaxK; ++k) acc[k] = 0.0f;
  for (int64_t t = t0; t < t1; ++t) {
    const float g = dpre[t * C + c];
    const int64_t b0 = doc_begin[t];
#pragma unroll
    for (int k = 0; k < kMaxK; ++k) {
      const int64_t j = t - K + 1 + k;
      if (k < K && j >= b0) acc[k] += g * in[j * in_stride + c];
    }
  }
  for (int k = 0; k < K; ++k) partial[(blockIdx.y * C + c) * K + k] = acc[k];
}

__global__ void dt_backward_kernel(float* draw, int64_t draw_stride, const float* ddt, const float* raw,
                                   int64_t raw_stride, const float* dt_bias, int64_t T, int64_t H, float lo, float hi) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= T * H) return;
  const int64_t t = i / H, h = i % H;
  const float v = raw[t * raw_stride + h] + dt_bias[h];
  const float sp = v > 20.0f ? v : log1pf(expf(v));
  float g = 0.0f;
  // d softplus / dv = sigmoid(v) (1 above torch's threshold of 20); no gradient where the clamp is active.
  if (sp >= lo && sp <= hi) g = ddt[i] * (v > 20.0f ? 1.0f : sigmoid_f(v));
  draw[t * draw_stride + h] = g;
}

__global__ void neg_exp_kernel(float* A, const float* A_log, int64_t H) {
  const int64_t h = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (h < H) A[h] = -expf(A_log[h]);
}

__global__ void add_product_kernel(float* out, const float* a, const float* b, int64_t n) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) out[i] += a[i] * b[i];
}

}  // namespace

void add_product(float* out, const float* a, const float* b, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  add_product_kernel<<<blocks_for(n, 128), 128, 0, s>>>(out, a, b, n);
  PCM_CUDA_LAUNCH();
}

int64_t conv1d_backward_scratch_floats(int64_t C, int64_t K) { return kSplits * C * K; }

void conv1d_silu_backward(float* din, int64_t din_stride, float* dw, float* db, const float* dout, const float* in,
                          int64_t in_stride, const float* w, const float* bias, const int32_t* row_doc_begin,
                          int64_t T, int64_t C, int64_t K, float* dpre, float* scratch, cudaStream_t s) {
  PCM_CHECK(K >= 1 && K <= kMaxK, "CUDA conv1d backward: kernel width {} not supported (1..{})", K, kMaxK);
  if (T == 0) return;
  const int k = static_cast<int>(K);
  conv_dpre_kernel<<<blocks_for(T * C, 256), 256, 0, s>>>(dpre, dout, in, in_stride, w, bias, row_doc_begin, T, C, k);
  PCM_CUDA_LAUNCH();
  conv_din_kernel<<<blocks_for(T * C, 256), 256, 0, s>>>(din, din_stride, dpre, w, row_doc_begin, T, C, k);
  PCM_CUDA_LAUNCH();
  conv_dw_partial_kernel<<<dim3(blocks_for(C, 128), kSplits), 128, 0, s>>>(scratch, dpre, in, in_stride,
                                                                          row_doc_begin, T, C, k);
  PCM_CUDA_LAUNCH();
  add_split_partials(dw, scratch, C * K, kSplits, s);
  if (db) column_sum_add(db, dpre, C, T, C, scratch, s);
}

void dt_softplus_backward(float* draw, int64_t draw_stride, float* ddt_bias, const float* ddt, const float* raw,
                          int64_t raw_stride, const float* dt_bias, int64_t T, int64_t H, float lo, float hi,
                          float* scratch, cudaStream_t s) {
  if (T == 0) return;
  dt_backward_kernel<<<blocks_for(T * H, 256), 256, 0, s>>>(draw, draw_stride, ddt, raw, raw_stride, dt_bias, T, H,
                                                            lo, hi);
  PCM_CUDA_LAUNCH();
  column_sum_add(ddt_bias, draw, draw_stride, T, H, scratch, s);
}

void neg_exp(float* A, const float* A_log, int64_t H, cudaStream_t s) {
  neg_exp_kernel<<<blocks_for(H, 128), 128, 0, s>>>(A, A_log, H);
  PCM_CUDA_LAUNCH();
}

}  // namespace pcm::cuda
