// Backward of the row-wise ops: RMSNorm, grouped gated RMSNorm, embedding gather, row scatter.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/train_ops.h"

namespace pcm::cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float sigmoid_f(float z) { return 1.0f / (1.0f + expf(-z)); }

// One block per row: r = rsqrt(mean(x²) + eps); dx = r·w·dout - x·r³·mean(w·dout·x).
__global__ void __launch_bounds__(kThreads) rmsnorm_backward_kernel(float* dx, bool accumulate, float* rows,
                                                                    const float* dout, const float* x,
                                                                    const float* w, int64_t C, float eps) {
  __shared__ float red[32];
  const int64_t t = blockIdx.x;
  const float* xr = x + t * C;
  const float* dr = dout + t * C;
  float ss = 0.0f, dot = 0.0f;
  for (int64_t i = threadIdx.x; i < C; i += kThreads) {
    ss += xr[i] * xr[i];
    dot += dr[i] * w[i] * xr[i];
  }
  ss = block_sum(ss, red);
  dot = block_sum(dot, red);
  const float r = rsqrtf(ss / static_cast<float>(C) + eps);
  const float k = r * r * r * dot / static_cast<float>(C);
  for (int64_t i = threadIdx.x; i < C; i += kThreads) {
    const float g = r * w[i] * dr[i] - xr[i] * k;
    dx[t * C + i] = accumulate ? dx[t * C + i] + g : g;
    rows[t * C + i] = dr[i] * xr[i] * r;
  }
}

// One block per (row, group): v = y·silu(z), the RMSNorm backward on v, then through the gate; yn (the
// forward's output, for the out_proj weight gradient) recomputed on the way when wanted.
__global__ void __launch_bounds__(kThreads) gated_rmsnorm_backward_kernel(
    float* dy, float* dz, int64_t dz_stride, float* yn, float* rows, const float* dout, const float* y,
    const float* z, int64_t z_stride, const float* w, int64_t C, int64_t gs, float eps) {
  __shared__ float red[32];
  const int64_t t = blockIdx.x, c0 = blockIdx.y * gs;
  float ss = 0.0f, dot = 0.0f;
  for (int64_t i = c0 + threadIdx.x; i < c0 + gs; i += kThreads) {
    const float zi = z[t * z_stride + i];
    const float v = y[t * C + i] * zi * sigmoid_f(zi);
    ss += v * v;
    dot += dout[t * C + i] * w[i] * v;
  }
  ss = block_sum(ss, red);
  dot = block_sum(dot, red);
  const float r = rsqrtf(ss / static_cast<float>(gs) + eps);
  const float k = r * r * r * dot / static_cast<float>(gs);
  for (int64_t i = c0 + threadIdx.x; i < c0 + gs; i += kThreads) {
    const float zi = z[t * z_stride + i], sg = sigmoid_f(zi), yi = y[t * C + i];
    const float silu = zi * sg, v = yi * silu, go = dout[t * C + i];
    const float dv = r * w[i] * go - v * k;
    rows[t * C + i] = go * v * r;
    if (yn) yn[t * C + i] = v * r * w[i];
    dy[t * C + i] = dv * silu;
    dz[t * dz_stride + i] = dv * yi * sg * (1.0f + zi * (1.0f - sg));
  }
}

__global__ void embedding_backward_kernel(float* dtable, const float* dout, const int32_t* uniq, const int32_t* off,
                                          const int32_t* pos, int64_t d) {
  const int64_t u = blockIdx.x;
  const int64_t c = blockIdx.y * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (c >= d) return;
  float acc = 0.0f;
  for (int32_t j = off[u]; j < off[u + 1]; ++j) acc += dout[static_cast<int64_t>(pos[j]) * d + c];
  dtable[static_cast<int64_t>(uniq[u]) * d + c] += acc;
}

__global__ void scatter_add_rows_kernel(float* dst, const float* src, const int32_t* rows, int64_t n, int64_t d) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n * d) return;
  dst[static_cast<int64_t>(rows[i / d]) * d + i % d] += src[i];
}

}  // namespace

void rmsnorm_backward(float* dx, bool accumulate, float* dweight, const float* dout, const float* x,
                      const float* weight, int64_t T, int64_t C, float eps, float* rows, float* scratch,
                      cudaStream_t s) {
  if (T == 0) return;
  rmsnorm_backward_kernel<<<static_cast<unsigned>(T), kThreads, 0, s>>>(dx, accumulate, rows, dout, x, weight, C, eps);
  PCM_CUDA_LAUNCH();
  column_sum_add(dweight, rows, C, T, C, scratch, s);
}

void gated_rmsnorm_backward(float* dy, float* dz, int64_t dz_stride, float* dweight, float* yn, const float* dout,
                            const float* y, const float* z, int64_t z_stride, const float* weight, int64_t T,
                            int64_t C, int64_t group_size, float eps, float* rows, float* scratch, cudaStream_t s) {
  if (T == 0) return;
  PCM_CHECK(group_size > 0 && C % group_size == 0, "gated_rmsnorm_backward: {} channels in groups of {}", C,
            group_size);
  dim3 grid(static_cast<unsigned>(T), static_cast<unsigned>(C / group_size));
  gated_rmsnorm_backward_kernel<<<grid, kThreads, 0, s>>>(dy, dz, dz_stride, yn, rows, dout, y, z, z_stride, weight,
                                                          C, group_size, eps);
  PCM_CUDA_LAUNCH();
  column_sum_add(dweight, rows, C, T, C, scratch, s);
}

void embedding_backward(float* dtable, const float* dout, const int32_t* uniq, const int32_t* off,
                        const int32_t* pos, int64_t n_uniq, int64_t d, cudaStream_t s) {
  if (n_uniq == 0) return;
  dim3 grid(static_cast<unsigned>(n_uniq), blocks_for(d, 128));
  embedding_backward_kernel<<<grid, 128, 0, s>>>(dtable, dout, uniq, off, pos, d);
  PCM_CUDA_LAUNCH();
}

void scatter_add_rows(float* dst, const float* src, const int32_t* rows, int64_t n, int64_t d, cudaStream_t s) {
  if (n == 0) return;
  scatter_add_rows_kernel<<<blocks_for(n * d, 256), 256, 0, s>>>(dst, src, rows, n, d);
  PCM_CUDA_LAUNCH();
}

}  // namespace pcm::cuda
