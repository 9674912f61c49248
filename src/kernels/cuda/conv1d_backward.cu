// Backward of the causal depthwise conv1d + SiLU over packed documents, of dt = clamp(softplus(.)), and
// A = -exp(A_log).
#include <algorithm>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/train_ops.h"

namespace pcm::cuda {
namespace {

constexpr int kMaxK = 8;

__device__ __forceinline__ float sigmoid_f(float z) { return 1.0f / (1.0f + expf(-z)); }
// The conv backward's: ex2.approx and an approximate divide (its rows are a dependent chain per thread).
__device__ __forceinline__ float fast_sigmoid(float z) { return __fdividef(1.0f, 1.0f + __expf(-z)); }

constexpr int kMaxTiles = 256;  // row tiles of one call: bounds the dw/db partials (the scratch)

// One thread per V adjacent channels walks one tile of rows, keeping its last K inputs and its last K
// pre-activation gradients (dpre = dout · silu'(pre)) in registers. dpre is computed once per row
// (plus K - 1 halo rows after the tile for din), so dout and the inputs are read and din written once;
// dw and db are summed per tile into partials (no atomics: deterministic). The loads of kAhead rows are
// issued together before they are used (a thread's rows are a dependent chain otherwise: one load in
// flight per array and thread). V = 2 (8-byte loads, where the layout is aligned) with 8 rows ahead
// brings 4x the bytes per thread at 5 blocks per SM instead of 8: the kernel is bound by the loads in
// flight, not by its arithmetic. V = 4 (bf16 input, 8-byte loads) keeps 4 rows ahead: 146-162 registers, 3 blocks.
template <int V>
constexpr int kAhead = V == 2 ? 8 : 4;

template <int V>
struct Vec;
template <>
struct Vec<1> {
  static __device__ __forceinline__ void get(const float* p, float* o) { o[0] = *p; }
  static __device__ __forceinline__ void get(const __nv_bfloat16* p, float* o) { o[0] = __bfloat162float(*p); }
  static __device__ __forceinline__ void put(float* p, const float* v) { *p = v[0]; }
  static __device__ __forceinline__ void put16(__nv_bfloat16* p, const float* v) { *p = __float2bfloat16(v[0]); }
};
template <>
struct Vec<2> {
  static __device__ __forceinline__ void get(const float* p, float* o) {
    const float2 q = *reinterpret_cast<const float2*>(p);
    o[0] = q.x;
    o[1] = q.y;
  }
  static __device__ __forceinline__ void get(const __nv_bfloat16* p, float* o) {
    const float2 q = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(p));
    o[0] = q.x;
    o[1] = q.y;
  }
  static __device__ __forceinline__ void put(float* p, const float* v) {
    *reinterpret_cast<float2*>(p) = make_float2(v[0], v[1]);
  }
  static __device__ __forceinline__ void put16(__nv_bfloat16* p, const float* v) {
    *reinterpret_cast<__nv_bfloat162*>(p) = __floats2bfloat162_rn(v[0], v[1]);
  }
};
template <>
struct Vec<4> {
  static __device__ __forceinline__ void get(const float* p, float* o) {
    const float4 q = *reinterpret_cast<const float4*>(p);
    o[0] = q.x;
    o[1] = q.y;
    o[2] = q.z;
    o[3] = q.w;
  }
  static __device__ __forceinline__ void get(const __nv_bfloat16* p, float* o) {
    const uint2 q = *reinterpret_cast<const uint2*>(p);
    const float2 a = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&q.x)),
                 b = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&q.y));
    o[0] = a.x;
    o[1] = a.y;
    o[2] = b.x;
    o[3] = b.y;
  }
  static __device__ __forceinline__ void put(float* p, const float* v) {
    *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
  }
  static __device__ __forceinline__ void put16(__nv_bfloat16* p, const float* v) {
    const __nv_bfloat162 a = __floats2bfloat162_rn(v[0], v[1]), b = __floats2bfloat162_rn(v[2], v[3]);
    uint2 q;
    q.x = *reinterpret_cast<const uint32_t*>(&a);
    q.y = *reinterpret_cast<const uint32_t*>(&b);
    *reinterpret_cast<uint2*>(p) = q;
  }
};

// A thread's registers: weights, the last K inputs and K pre-activation gradients (and the document
// starts of those rows), the weight and bias gradient sums.
template <int K, int V>
struct ConvBwdState {
  float wk[V][K], x[V][K], g[V][K], dw[V][K], b[V], db[V];
  int32_t gb[K];
};

// Rows [t0, t1) of a tile plus the K - 1 halo rows after it (for din). kChecked = false: every row walked
// and every tap inside one document and inside the batch (the block checked it), so no document-boundary
// tests: the kernel is issue-bound (ncu: 75 % of the SM's issue slots at 2 channels per thread), and they
// were a third of its instructions. In: the input's type, fp32 or bf16 (the bf16 training's in_proj output).
template <int K, int V, bool kChecked, class In>
__device__ __forceinline__ void conv_bwd_walk(ConvBwdState<K, V>& st, float* __restrict__ din,
                                              __nv_bfloat16* __restrict__ din16, int64_t din_stride,
                                              const float* __restrict__ dout, const In* __restrict__ in,
                                              int64_t in_stride, const int32_t* __restrict__ doc_begin, int64_t c,
                                              int64_t t0, int64_t t1, int64_t T, int64_t C) {
  const int64_t r_end = t1 + K - 1, r_in = min(T, r_end);  // rows walked; rows with inputs
  for (int64_t r0 = t0; r0 < r_end; r0 += kAhead<V>) {
    float xa[kAhead<V>][V], da[kAhead<V>][V];
    int32_t ba[kAhead<V>];
#pragma unroll
    for (int q = 0; q < kAhead<V>; ++q) {
      const int64_t r = r0 + q;
      if (r < r_in) {
        Vec<V>::get(in + r * in_stride + c, xa[q]);
        Vec<V>::get(dout + r * C + c, da[q]);
        ba[q] = kChecked ? doc_begin[r] : 0;
      } else {
#pragma unroll
        for (int v = 0; v < V; ++v) xa[q][v] = da[q][v] = 0.0f;
        ba[q] = 0;
      }
    }
#pragma unroll
    for (int q = 0; q < kAhead<V>; ++q) {
      const int64_t r = r0 + q;
      if (r >= r_end) break;
      float gr[V];
      int32_t br = 0;
#pragma unroll
      for (int v = 0; v < V; ++v) gr[v] = 0.0f;
      if (!kChecked || r < T) {
        br = ba[q];
#pragma unroll
        for (int v = 0; v < V; ++v) {
#pragma unroll
          for (int k = 0; k + 1 < K; ++k) st.x[v][k] = st.x[v][k + 1];
          st.x[v][K - 1] = xa[q][v];
          float pre = st.b[v];
#pragma unroll
          for (int k = 0; k < K; ++k)
            if (!kChecked || r - K + 1 + k >= br) pre += st.wk[v][k] * st.x[v][k];
          const float sg = fast_sigmoid(pre);
          gr[v] = da[q][v] * sg * (1.0f + pre * (1.0f - sg));
          if (r < t1) {
            st.db[v] += gr[v];
#pragma unroll
            for (int k = 0; k < K; ++k)
              if (!kChecked || r - K + 1 + k >= br) st.dw[v][k] += gr[v] * st.x[v][k];
          }
        }
      }
#pragma unroll
      for (int k = 0; k + 1 < K; ++k) {
        if (kChecked) st.gb[k] = st.gb[k + 1];
#pragma unroll
        for (int v = 0; v < V; ++v) st.g[v][k] = st.g[v][k + 1];
      }
      if (kChecked) st.gb[K - 1] = br;
#pragma unroll
      for (int v = 0; v < V; ++v) st.g[v][K - 1] = gr[v];
      // din[t] = sum_k w[k] · dpre[t + K - 1 - k] over rows of t's document (g[K - 1 - k] holds that row).
      const int64_t t = r - K + 1;
      if (t >= t0) {
        float acc[V];
#pragma unroll
        for (int v = 0; v < V; ++v) {
          acc[v] = 0.0f;
#pragma unroll
          for (int k = 0; k < K; ++k)
            if (!kChecked || st.gb[K - 1 - k] <= t) acc[v] += st.wk[v][k] * st.g[v][K - 1 - k];
        }
        if (din) Vec<V>::put(din + t * din_stride + c, acc);
        if (din16) Vec<V>::put16(din16 + t * din_stride + c, acc);
      }
    }
  }
}

template <int K, int V, class In>
__global__ void __launch_bounds__(128, V == 1 ? (K <= 5 ? 6 : 4) : V == 2 ? (K <= 4 ? 5 : 4) : 3)
    conv_backward_kernel(float* __restrict__ din, __nv_bfloat16* __restrict__ din16, int64_t din_stride,
                         float* __restrict__ partial_w, float* __restrict__ partial_b, const float* __restrict__ dout,
                         const In* __restrict__ in, int64_t in_stride, const float* __restrict__ w,
                         const float* __restrict__ bias, const int32_t* __restrict__ doc_begin, int64_t T, int64_t C,
                         int64_t tile_rows) {
  const int64_t c = V * (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x);
  if (c >= C) return;
  const int64_t t0 = blockIdx.y * tile_rows, t1 = min(T, t0 + tile_rows);
  ConvBwdState<K, V> st;
#pragma unroll
  for (int v = 0; v < V; ++v) {
    st.b[v] = bias ? bias[c + v] : 0.0f;
    st.db[v] = 0.0f;
  }
#pragma unroll
  for (int k = 0; k < K; ++k) {
    st.gb[k] = 0;
    const int64_t j = t0 - K + k;  // x[k + 1] = input of row t0 - K + 1 + k before the first shift
    float xv[V];
    if (k + 1 < K) {
      if (j + 1 >= 0)
        Vec<V>::get(in + (j + 1) * in_stride + c, xv);
      else
#pragma unroll
        for (int v = 0; v < V; ++v) xv[v] = 0.0f;
    }
#pragma unroll
    for (int v = 0; v < V; ++v) {
      st.wk[v][k] = w[(c + v) * K + k];
      st.g[v][k] = 0.0f;
      st.dw[v][k] = 0.0f;
      if (k + 1 < K) st.x[v][k + 1] = xv[v];
    }
  }
  // The whole walk (history rows t0 - K + 1.. through the halo t1 + K - 2) in one document and the batch:
  // doc_begin is non-decreasing, so its ends agree exactly then.
  const int64_t h0 = t0 - (K - 1), h1 = t1 + K - 2;
  const bool inside = h0 >= 0 && h1 < T && doc_begin[h0] == doc_begin[h1];
  if (inside)
    conv_bwd_walk<K, V, false, In>(st, din, din16, din_stride, dout, in, in_stride, doc_begin, c, t0, t1, T, C);
  else
    conv_bwd_walk<K, V, true, In>(st, din, din16, din_stride, dout, in, in_stride, doc_begin, c, t0, t1, T, C);
#pragma unroll
  for (int v = 0; v < V; ++v) {
#pragma unroll
    for (int k = 0; k < K; ++k) partial_w[(blockIdx.y * C + c + v) * K + k] = st.dw[v][k];
    partial_b[blockIdx.y * C + c + v] = st.db[v];
  }
}

template <int K, class In>
void launch_conv_backward(float* din, __nv_bfloat16* din16, int64_t din_stride, float* partial_w, float* partial_b,
                          const float* dout, const In* in, int64_t in_stride, const float* w, const float* bias,
                          const int32_t* doc_begin, int64_t T, int64_t C, int64_t tile_rows, int tiles,
                          cudaStream_t s) {
  // K = 4 (every published Mamba-2): pairs of channels when every row of every array starts 8-byte aligned
  // (din16 and a bf16 input: 4-byte).
  if constexpr (K == 4) {
    // bf16 input: 4 channels a thread, 8-byte input loads as fp32's pairs load (with 2 a thread its 4-byte loads made
    // the kernel 164.7 -> 209.9 µs a layer slower than on fp32 input; H100, bench/cuda_notes.md)
    if (sizeof(In) == 2 && C % 4 == 0 && in_stride % 4 == 0 && din_stride % 4 == 0 && aligned(in, 8) &&
        aligned(dout, 16) && aligned(din, 16) && aligned(din16, 8)) {
      conv_backward_kernel<K, 4, In><<<dim3(blocks_for(C / 4, 128), tiles), 128, 0, s>>>(
          din, din16, din_stride, partial_w, partial_b, dout, in, in_stride, w, bias, doc_begin, T, C, tile_rows);
      return;
    }
    if (C % 2 == 0 && in_stride % 2 == 0 && din_stride % 2 == 0 && aligned(in, 2 * sizeof(In)) && aligned(dout, 8) &&
        aligned(din, 8) && aligned(din16, 4)) {
      conv_backward_kernel<K, 2, In><<<dim3(blocks_for(C / 2, 128), tiles), 128, 0, s>>>(
          din, din16, din_stride, partial_w, partial_b, dout, in, in_stride, w, bias, doc_begin, T, C, tile_rows);
      return;
    }
  }
  conv_backward_kernel<K, 1, In><<<dim3(blocks_for(C, 128), tiles), 128, 0, s>>>(
      din, din16, din_stride, partial_w, partial_b, dout, in, in_stride, w, bias, doc_begin, T, C, tile_rows);
}

template <class Raw>
__global__ void dt_backward_kernel(float* draw, int64_t draw_stride, __nv_bfloat16* draw16, int64_t draw16_stride,
                                   const float* ddt, const Raw* raw,
                                   int64_t raw_stride, const float* dt_bias, int64_t T, int64_t H, float lo, float hi) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= T * H) return;
  const int64_t t = i / H, h = i % H;
  const float v = to_float(raw[t * raw_stride + h]) + dt_bias[h];
  const float sp = v > 20.0f ? v : log1pf(expf(v));
  float g = 0.0f;
  // d softplus / dv = sigmoid(v) (1 above torch's threshold of 20); no gradient where the clamp is active.
  if (sp >= lo && sp <= hi) g = ddt[i] * (v > 20.0f ? 1.0f : sigmoid_f(v));
  draw[t * draw_stride + h] = g;
  if (draw16) draw16[t * draw16_stride + h] = __float2bfloat16(g);
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

int64_t conv1d_backward_scratch_floats(int64_t C, int64_t K) { return kMaxTiles * C * (K + 1); }

void conv1d_silu_backward(float* din, uint16_t* din_bf16, int64_t din_stride, float* dw, float* db, const float* dout,
                          const void* in, int64_t in_stride, const float* w, const float* bias,
                          const int32_t* row_doc_begin, int64_t T, int64_t C, int64_t K, float* scratch,
                          cudaStream_t s, bool in_bf16) {
  auto* din16 = reinterpret_cast<__nv_bfloat16*>(din_bf16);
  PCM_CHECK(K >= 1 && K <= kMaxK, "CUDA conv1d backward: kernel width {} not supported (1..{})", K, kMaxK);
  if (T == 0 || C == 0) return;
  // 64-row tiles (the K - 1 halo rows are ~5% extra reads), longer ones when that would exceed kMaxTiles.
  const int64_t tile_rows = std::max<int64_t>(64, (T + kMaxTiles - 1) / kMaxTiles);
  const int tiles = static_cast<int>((T + tile_rows - 1) / tile_rows);
  float *partial_w = scratch, *partial_b = scratch + static_cast<int64_t>(tiles) * C * K;
  with_input_type(in, in_bf16, [&](auto* x) {
    switch (K) {
#define PCM_CONV_BWD(k)                                                                                            \
  case k:                                                                                                          \
    launch_conv_backward<k>(din, din16, din_stride, partial_w, partial_b, dout, x, in_stride, w, bias, row_doc_begin, \
                            T, C, tile_rows, tiles, s);                                                            \
    break;
      PCM_CONV_BWD(1) PCM_CONV_BWD(2) PCM_CONV_BWD(3) PCM_CONV_BWD(4) PCM_CONV_BWD(5) PCM_CONV_BWD(6) PCM_CONV_BWD(7)
      PCM_CONV_BWD(8)
#undef PCM_CONV_BWD
    }
  });
  PCM_CUDA_LAUNCH();
  add_split_partials(dw, partial_w, C * K, tiles, s);
  if (db) add_split_partials(db, partial_b, C, tiles, s);
}

void dt_softplus_backward(float* draw, int64_t draw_stride, uint16_t* draw_bf16, int64_t draw_bf16_stride,
                          float* ddt_bias, const float* ddt, const void* raw, int64_t raw_stride,
                          const float* dt_bias, int64_t T, int64_t H, float lo, float hi, float* scratch,
                          cudaStream_t s, bool raw_bf16) {
  if (T == 0) return;
  auto* draw16 = reinterpret_cast<__nv_bfloat16*>(draw_bf16);
  with_input_type(raw, raw_bf16, [&](auto* r) {
    dt_backward_kernel<<<blocks_for(T * H, 256), 256, 0, s>>>(draw, draw_stride, draw16, draw_bf16_stride, ddt, r,
                                                              raw_stride, dt_bias, T, H, lo, hi);
  });
  PCM_CUDA_LAUNCH();
  column_sum_add(ddt_bias, draw, draw_stride, T, H, scratch, s);
}

void neg_exp(float* A, const float* A_log, int64_t H, cudaStream_t s) {
  neg_exp_kernel<<<blocks_for(H, 128), 128, 0, s>>>(A, A_log, H);
  PCM_CUDA_LAUNCH();
}

}  // namespace pcm::cuda
