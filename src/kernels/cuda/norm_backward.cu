// Backward of the row-wise ops: RMSNorm, grouped gated RMSNorm, embedding gather, row scatter.
#include <algorithm>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/norm_backward_staged.h"
#include "kernels/cuda/train_ops.h"

namespace pcm::cuda {
namespace {

// Rows per block of the norm backwards: each block sums its rows' weight-gradient terms in registers and
// writes one partial row (sum_split_partials adds them), instead of a [T, C] scratch and a column sum.
constexpr int64_t kSplitRows = 8;

// Both sums over the block at once (one barrier pair instead of two); every thread gets them.
__device__ __forceinline__ float2 block_sum2(float a, float b, float2* smem32) {
  a = warp_sum(a);
  b = warp_sum(b);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  __syncthreads();  // smem32 may still be read by the previous row
  if (lane == 0) smem32[warp] = make_float2(a, b);
  __syncthreads();
  const float2 r = lane < warps ? smem32[lane] : make_float2(0.0f, 0.0f);
  return make_float2(warp_sum(r.x), warp_sum(r.y));
}

// TH threads hold a row (group) of up to TH * V channels in registers (thread i: channels i, i + TH, ...);
// at most 64 registers per thread, so an SM runs 1024 threads of these blocks (their rows' loads overlap
// the others' barriers).
#define PCM_NORM_BWD_BOUNDS __launch_bounds__(TH, 1024 / TH)

// Rows [blockIdx.x * kSplitRows, +kSplitRows) of one RMSNorm: r = rsqrt(mean(x²) + eps);
// dx = r·w·dout - x·r³·mean(w·dout·x); partial[block, c] = sum over its rows of dout·x·r.
template <int TH, int V>
__global__ void PCM_NORM_BWD_BOUNDS rmsnorm_backward_kernel(float* dx, bool accumulate, __nv_bfloat16* dx16,
                                                            float* partial, const float* dout, const float* x,
                                                            const float* w, int64_t T, int64_t C, float eps,
                                                            void* xn, bool xn_bf16) {
  __shared__ float2 red[32];
  float acc[V];
#pragma unroll
  for (int u = 0; u < V; ++u) acc[u] = 0.0f;
  const int64_t t1 = min(T, (blockIdx.x + 1) * kSplitRows);
  for (int64_t t = blockIdx.x * kSplitRows; t < t1; ++t) {
    float xv[V], dv[V], ss = 0.0f, dot = 0.0f;
#pragma unroll
    for (int u = 0; u < V; ++u) {
      const int64_t i = threadIdx.x + static_cast<int64_t>(u) * TH;
      xv[u] = i < C ? x[t * C + i] : 0.0f;
      dv[u] = i < C ? dout[t * C + i] : 0.0f;
      ss += xv[u] * xv[u];
      dot += dv[u] * (i < C ? w[i] : 0.0f) * xv[u];
    }
    const float2 sd = block_sum2(ss, dot, red);
    const float r = rsqrtf(sd.x / static_cast<float>(C) + eps);
    const float k = r * r * r * sd.y / static_cast<float>(C);
#pragma unroll
    for (int u = 0; u < V; ++u) {
      const int64_t i = threadIdx.x + static_cast<int64_t>(u) * TH;
      if (i < C) {
        const float wi = w[i], g = r * wi * dv[u] - xv[u] * k;
        const float o = accumulate ? dx[t * C + i] + g : g;
        dx[t * C + i] = o;
        if (dx16) dx16[t * C + i] = __float2bfloat16(o);
        if (xn) {
          if (xn_bf16)
            static_cast<__nv_bfloat16*>(xn)[t * C + i] = __float2bfloat16(xv[u] * r * wi);
          else
            static_cast<float*>(xn)[t * C + i] = xv[u] * r * wi;
        }
        acc[u] += dv[u] * xv[u] * r;
      }
    }
  }
#pragma unroll
  for (int u = 0; u < V; ++u) {
    const int64_t i = threadIdx.x + static_cast<int64_t>(u) * TH;
    if (i < C) partial[blockIdx.x * C + i] = acc[u];
  }
}

// Rows [blockIdx.x * kSplitRows, +kSplitRows) of group blockIdx.y: v = y·silu(z), the RMSNorm backward on
// v, then through the gate; yn (the forward's output, for the out_proj weight gradient) recomputed on the
// way when wanted; dz in fp32 and/or bf16 (the in_proj backward's operand).
// y and z: fp32, or bf16 (the bf16 training's SSD output and in_proj output).

template <int TH, int V, class Y, class Z>
__global__ void PCM_NORM_BWD_BOUNDS gated_rmsnorm_backward_kernel(
    float* dy, float* dz, __nv_bfloat16* dz16, int64_t dz_stride, void* yn, bool yn_bf16, float* partial,
    const float* dout, const Y* y, const Z* z, int64_t z_stride, const float* w, int64_t T, int64_t C,
    int64_t gs, float eps) {
  __shared__ float2 red[32];
  const int64_t c0 = blockIdx.y * gs;
  const float* wg = w + c0;  // read per row (L1 hits): registers go to the row's values
  float acc[V];
#pragma unroll
  for (int u = 0; u < V; ++u) acc[u] = 0.0f;
  const int64_t t1 = min(T, (blockIdx.x + 1) * kSplitRows);
  for (int64_t t = blockIdx.x * kSplitRows; t < t1; ++t) {
    // Only dout stays in registers; y and z are read again below (L1 hits), which keeps 2 blocks per SM.
    float gv[V], ss = 0.0f, dot = 0.0f;
#pragma unroll
    for (int u = 0; u < V; ++u) {
      const int64_t i = threadIdx.x + static_cast<int64_t>(u) * TH;
      const float zi = i < gs ? to_float(z[t * z_stride + c0 + i]) : 0.0f,
                  yi = i < gs ? to_float(y[t * C + c0 + i]) : 0.0f;
      gv[u] = i < gs ? dout[t * C + c0 + i] : 0.0f;
      const float v = yi * (zi * sigmoid_fast(zi));
      ss += v * v;
      dot += gv[u] * (i < gs ? wg[i] : 0.0f) * v;
    }
    const float2 sd = block_sum2(ss, dot, red);
    const float r = rsqrtf(sd.x / static_cast<float>(gs) + eps);
    const float k = r * r * r * sd.y / static_cast<float>(gs);
#pragma unroll
    for (int u = 0; u < V; ++u) {
      const int64_t i = threadIdx.x + static_cast<int64_t>(u) * TH;
      if (i < gs) {
        const int64_t c = c0 + i;
        const float zi = to_float(z[t * z_stride + c]), yi = to_float(y[t * C + c]), sg = sigmoid_fast(zi), go = gv[u],
                    wi = wg[i];
        const float silu = zi * sg, v = yi * silu;
        const float dv = r * wi * go - v * k;
        acc[u] += go * v * r;
        if (yn) {
          const float o = v * r * wi;
          if (yn_bf16)
            static_cast<__nv_bfloat16*>(yn)[t * C + c] = __float2bfloat16(o);
          else
            static_cast<float*>(yn)[t * C + c] = o;
        }
        dy[t * C + c] = dv * silu;
        const float dzi = dv * yi * sg * (1.0f + zi * (1.0f - sg));
        if (dz) dz[t * dz_stride + c] = dzi;
        if (dz16) dz16[t * dz_stride + c] = __float2bfloat16(dzi);
      }
    }
  }
#pragma unroll
  for (int u = 0; u < V; ++u) {
    const int64_t i = threadIdx.x + static_cast<int64_t>(u) * TH;
    if (i < gs) partial[blockIdx.x * C + c0 + i] = acc[u];
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

int64_t row_splits(int64_t T) { return (T + kSplitRows - 1) / kSplitRows; }
// The staged kernels take kStagedRows rows a block: at most row_splits(T) blocks, so their partial rows fit
// the same scratch.
constexpr int64_t kStagedRows = 2 * kSplitRows;
int64_t staged_splits(int64_t T) { return (T + kStagedRows - 1) / kStagedRows; }

// Threads per block for a row (group) of `width` channels, 8 values each; 0 = too wide.
int threads_for(int64_t width) { return width <= 2048 ? 256 : width <= 4096 ? 512 : width <= 8192 ? 1024 : 0; }

}  // namespace

int64_t norm_backward_scratch_floats(int64_t T, int64_t C) {
  return row_splits(T) * C + sum_split_partials_tmp_floats(C, row_splits(T));
}

void rmsnorm_backward(float* dx, bool accumulate, uint16_t* dx_bf16, float* dweight, const float* dout,
                      const float* x, const float* weight, int64_t T, int64_t C, float eps, float* scratch,
                      cudaStream_t s, void* xn, bool xn_bf16) {
  if (T == 0) return;
  const int th = threads_for(C);
  PCM_CHECK(th > 0, "CUDA RMSNorm backward: {} channels exceed 8192", C);
  const StagedRmsArgs sa{dx, dx_bf16, accumulate, scratch, dout, x, weight, T, C, eps, xn, xn_bf16};
  if (rms_bwd_staged_supported(sa)) {  // the staged kernel where 16-byte copies fit (H200: 92 vs 104 us at 1.3B)
    const int64_t splits = staged_splits(T);
    rms_bwd_staged(sa, kStagedRows, splits, s);
    sum_split_partials(dweight, scratch, C, splits, scratch + splits * C, s);
    return;
  }
  const int64_t splits = row_splits(T);
  auto* dx16 = reinterpret_cast<__nv_bfloat16*>(dx_bf16);
  const unsigned grid = static_cast<unsigned>(splits);
  if (th == 256)
    rmsnorm_backward_kernel<256, 8><<<grid, th, 0, s>>>(dx, accumulate, dx16, scratch, dout, x, weight, T, C, eps, xn,
                                                          xn_bf16);
  else if (th == 512)
    rmsnorm_backward_kernel<512, 8><<<grid, th, 0, s>>>(dx, accumulate, dx16, scratch, dout, x, weight, T, C, eps, xn,
                                                          xn_bf16);
  else
    rmsnorm_backward_kernel<1024, 8><<<grid, th, 0, s>>>(dx, accumulate, dx16, scratch, dout, x, weight, T, C, eps, xn,
                                                          xn_bf16);
  PCM_CUDA_LAUNCH();
  sum_split_partials(dweight, scratch, C, splits, scratch + splits * C, s);
}

void gated_rmsnorm_backward(float* dy, float* dz, uint16_t* dz_bf16, int64_t dz_stride, float* dweight, void* yn,
                            bool yn_bf16, const float* dout, const void* y, const void* z, int64_t z_stride,
                            const float* weight, int64_t T, int64_t C, int64_t group_size, float eps, float* scratch,
                            cudaStream_t s, bool y_bf16, bool z_bf16) {
  if (T == 0) return;
  PCM_CHECK(group_size > 0 && C % group_size == 0, "gated_rmsnorm_backward: {} channels in groups of {}", C,
            group_size);
  const int th = threads_for(group_size);
  PCM_CHECK(th > 0, "CUDA gated RMSNorm backward: group of {} channels exceeds 8192", group_size);
  const StagedGatedArgs sa{dy, dz, dz_bf16, dz_stride, yn, yn_bf16, scratch, dout, y, z, z_stride, weight, T, C,
                           group_size, eps, y_bf16, z_bf16};
  if (gated_bwd_staged_supported(sa)) {  // the staged kernel where 16-byte copies fit (H200: 198 vs 229 us at 1.3B)
    const int64_t splits = staged_splits(T);
    gated_bwd_staged(sa, kStagedRows, splits, s);
    sum_split_partials(dweight, scratch, C, splits, scratch + splits * C, s);
    return;
  }
  const int64_t splits = row_splits(T);
  auto* dz16 = reinterpret_cast<__nv_bfloat16*>(dz_bf16);
  const dim3 grid(static_cast<unsigned>(splits), static_cast<unsigned>(C / group_size));
  auto launch = [&](auto* yt, auto* zt) {
#define PCM_GATED_BWD(TH)                                                                                        \
  gated_rmsnorm_backward_kernel<TH, 8><<<grid, TH, 0, s>>>(dy, dz, dz16, dz_stride, yn, yn_bf16, scratch, dout, yt, \
                                                           zt, z_stride, weight, T, C, group_size, eps)
    if (th == 256)
      PCM_GATED_BWD(256);
    else if (th == 512)
      PCM_GATED_BWD(512);
    else
      PCM_GATED_BWD(1024);
#undef PCM_GATED_BWD
  };
  with_input_type(y, y_bf16, [&](auto* yt) { with_input_type(z, z_bf16, [&](auto* zt) { launch(yt, zt); }); });
  PCM_CUDA_LAUNCH();
  sum_split_partials(dweight, scratch, C, splits, scratch + splits * C, s);
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
