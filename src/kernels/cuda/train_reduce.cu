// Deterministic reductions (column sums, float64 sums, sum of squares) and the AdamW update.
#include <algorithm>
#include <cstdint>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/train_ops.h"

namespace pcm::cuda {
namespace {

constexpr int kSplits = 64;  // row blocks of a column sum: enough blocks to fill the GPU for narrow C

__global__ void column_partial_kernel(float* partial, const float* in, int64_t stride, int64_t T, int64_t C) {
  const int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  const int64_t per = (T + kSplits - 1) / kSplits, t0 = blockIdx.y * per, t1 = min(T, t0 + per);
  float acc = 0.0f;
  for (int64_t t = t0; t < t1; ++t) acc += in[t * stride + c];
  partial[blockIdx.y * C + c] = acc;
}

__global__ void add_partials_kernel(float* out, const float* partial, int64_t n, int splits) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  float acc = 0.0f;
  for (int s = 0; s < splits; ++s) acc += partial[s * n + i];
  out[i] += acc;
}

__global__ void sum_double_kernel(double* out, const float* in, int64_t n) {
  __shared__ double red[1024];
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) acc += in[i];
  red[threadIdx.x] = acc;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) red[threadIdx.x] += red[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) *out += red[0];
}

constexpr int kSqBlocks = 512, kSqThreads = 256;

// x[i] · f1 · f2 rounded as two scale() calls would leave it: the pending gradient scales.
__device__ __forceinline__ float scaled(float x, float f1, float f2) {
  x *= f1;
  return x * f2;
}

__global__ void sum_squares_partial_kernel(double* partial, const float* x, int64_t n, float f1, float f2) {
  __shared__ double red[kSqThreads];
  double acc = 0.0;
  const int64_t n4 = aligned(x, 16) ? n / 4 : 0;  // 16-byte loads for the bulk
  for (int64_t j = blockIdx.x * static_cast<int64_t>(kSqThreads) + threadIdx.x; j < n4;
       j += static_cast<int64_t>(kSqBlocks) * kSqThreads) {
    const float4 q = reinterpret_cast<const float4*>(x)[j];
    const double a = scaled(q.x, f1, f2), b = scaled(q.y, f1, f2), c = scaled(q.z, f1, f2), d = scaled(q.w, f1, f2);
    acc += a * a + b * b + c * c + d * d;
  }
  for (int64_t i = 4 * n4 + blockIdx.x * static_cast<int64_t>(kSqThreads) + threadIdx.x; i < n;
       i += static_cast<int64_t>(kSqBlocks) * kSqThreads) {
    const double xi = scaled(x[i], f1, f2);
    acc += xi * xi;
  }
  red[threadIdx.x] = acc;
  __syncthreads();
  for (int w = kSqThreads / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) red[threadIdx.x] += red[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.x] = red[0];
}

__global__ void sum_partials_double_kernel(double* out, const double* partial) {
  __shared__ double red[kSqBlocks];
  red[threadIdx.x] = partial[threadIdx.x];
  __syncthreads();
  for (int w = kSqBlocks / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) red[threadIdx.x] += red[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) *out = red[0];
}

__global__ void scale_kernel(float* x, float f, int64_t n) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) x[i] *= f;
}

constexpr int kAdamThreads = 256;

__device__ __forceinline__ void adamw_one(float& w, float g, float& m, float& v, float decay, const AdamWArgs& a) {
  const float gi = scaled(g, a.g_scale1, a.g_scale2);
  m = a.b1 * m + (1.0f - a.b1) * gi;
  v = a.b2 * v + (1.0f - a.b2) * gi * gi;
  w = w * decay - a.step_size * m / (sqrtf(v) * a.inv_sqrt_bc2 + a.eps);
}

// All tensors in one launch, 4 consecutive elements per thread (16-byte loads; the buffers are cudaMalloc'd,
// so aligned): element i belongs to run r (run_end[r - 1] <= i < run_end[r]), which decays when
// run_decay[r]; a thread finds its first element's run by bisection, then walks forward.
__global__ void __launch_bounds__(kAdamThreads) adamw_kernel(float* w, const float* g, float* m, float* v, int64_t n,
                                                             const int64_t* run_end, const uint8_t* run_decay,
                                                             int runs, AdamWArgs a) {
  const int64_t i0 = 4 * (blockIdx.x * static_cast<int64_t>(kAdamThreads) + threadIdx.x);
  if (i0 >= n) return;
  int lo = 0, hi = runs - 1;  // the first run with run_end > i0
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (run_end[mid] > i0) hi = mid; else lo = mid + 1;
  }
  float dec[4];
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    while (lo < runs - 1 && run_end[lo] <= i0 + q) ++lo;
    dec[q] = run_decay[lo] ? a.decay : 1.0f;
  }
  if (i0 + 4 <= n) {
    float4 wv = *reinterpret_cast<const float4*>(w + i0), mv = *reinterpret_cast<const float4*>(m + i0),
           vv = *reinterpret_cast<const float4*>(v + i0);
    const float4 gv = *reinterpret_cast<const float4*>(g + i0);
    adamw_one(wv.x, gv.x, mv.x, vv.x, dec[0], a);
    adamw_one(wv.y, gv.y, mv.y, vv.y, dec[1], a);
    adamw_one(wv.z, gv.z, mv.z, vv.z, dec[2], a);
    adamw_one(wv.w, gv.w, mv.w, vv.w, dec[3], a);
    *reinterpret_cast<float4*>(w + i0) = wv;
    *reinterpret_cast<float4*>(m + i0) = mv;
    *reinterpret_cast<float4*>(v + i0) = vv;
    return;
  }
  for (int q = 0; q < 4 && i0 + q < n; ++q) adamw_one(w[i0 + q], g[i0 + q], m[i0 + q], v[i0 + q], dec[q], a);
}

// partial_tmp[g, i] = sum of partial[s, i] over the kFold splits s of group g, in order.
constexpr int64_t kFold = 32;
__global__ void fold_partials_kernel(float* tmp, const float* partial, int64_t n, int64_t splits) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const int64_t s0 = blockIdx.y * kFold, s1 = min(splits, s0 + kFold);
  float acc = 0.0f;
  for (int64_t s = s0; s < s1; ++s) acc += partial[s * n + i];
  tmp[blockIdx.y * n + i] = acc;
}

// One block row per matrix row (no index division); 4 columns per thread when the rows are 16-byte aligned.
template <bool kVec4>
__global__ void to_bf16_2d_kernel(__nv_bfloat16* out, const float* in, int64_t rows, int64_t cols, int64_t ld) {
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    const float* src = in + r * ld;
    __nv_bfloat16* dst = out + r * cols;
    if constexpr (kVec4) {
      for (int64_t c = 4 * (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x); c < cols;
           c += 4 * static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const float4 v = *reinterpret_cast<const float4*>(src + c);
        __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y), hi = __floats2bfloat162_rn(v.z, v.w);
        uint2 packed;
        packed.x = *reinterpret_cast<uint32_t*>(&lo);
        packed.y = *reinterpret_cast<uint32_t*>(&hi);
        *reinterpret_cast<uint2*>(dst + c) = packed;
      }
    } else {
      for (int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; c < cols;
           c += static_cast<int64_t>(gridDim.x) * blockDim.x)
        dst[c] = __float2bfloat16(src[c]);
    }
  }
}

// A contiguous matrix as one flat array (the weights): kUnroll 16-byte loads in flight per thread over a
// grid of a few blocks per SM (the row kernel above issued one load per thread, 8 KB per block).
constexpr int kFlatUnroll = 4;
__global__ void __launch_bounds__(256) to_bf16_flat_kernel(uint2* __restrict__ out, const float4* __restrict__ in,
                                                           int64_t n4) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  for (; i + (kFlatUnroll - 1) * stride < n4; i += kFlatUnroll * stride) {
    float4 v[kFlatUnroll];
#pragma unroll
    for (int q = 0; q < kFlatUnroll; ++q) v[q] = __ldcs(in + i + q * stride);  // read once: evict first
#pragma unroll
    for (int q = 0; q < kFlatUnroll; ++q) out[i + q * stride] = pack_bf16x4(v[q]);
  }
  for (; i < n4; i += stride) out[i] = pack_bf16x4(__ldcs(in + i));
}

// An order-free 64-bit digest of the bits: the sum over i of splitmix64(bits_i + i·golden), summed in
// integers (exact in any order, so the same bits give the same digest).
__device__ __forceinline__ unsigned long long mix64(unsigned long long z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
__global__ void digest_kernel(unsigned long long* out, const uint32_t* a, int64_t n) {
  unsigned long long acc = 0;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    acc += mix64(a[i] + static_cast<unsigned long long>(i) * 0x9E3779B97F4A7C15ull);
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  if ((threadIdx.x & 31) == 0) atomicAdd(out, acc);
}

}  // namespace

uint64_t bits_digest(const float* a, int64_t n, cudaStream_t s) {
  unsigned long long* d = nullptr;
  PCM_CUDA(cudaMallocAsync(reinterpret_cast<void**>(&d), sizeof(*d), s));
  PCM_CUDA(cudaMemsetAsync(d, 0, sizeof(*d), s));
  if (n > 0) {
    digest_kernel<<<static_cast<unsigned>(std::min<int64_t>(blocks_for(n, 256), 2048)), 256, 0, s>>>(
        d, reinterpret_cast<const uint32_t*>(a), n);
    PCM_CUDA_LAUNCH();
  }
  unsigned long long h = 0;
  PCM_CUDA(cudaMemcpyAsync(&h, d, sizeof(h), cudaMemcpyDeviceToHost, s));
  PCM_CUDA(cudaFreeAsync(d, s));
  PCM_CUDA(cudaStreamSynchronize(s));
  return h;
}

void f32_to_bf16_2d(uint16_t* out, const float* in, int64_t rows, int64_t cols, int64_t ld, cudaStream_t s) {
  if (rows * cols == 0) return;
  auto* dst = reinterpret_cast<__nv_bfloat16*>(out);
  const bool vec4 = cols % 4 == 0 && ld % 4 == 0 && aligned(in, 16) && aligned(out, 8);
  constexpr int kThreads = 256;
  if (vec4 && ld == cols) {  // contiguous: one flat pass
    static const int sms = device_attribute(cudaDevAttrMultiProcessorCount);
    const int64_t n4 = rows * cols / 4;
    const int64_t blocks = std::min<int64_t>((n4 + kThreads - 1) / kThreads, 8LL * sms);
    to_bf16_flat_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, s>>>(reinterpret_cast<uint2*>(dst),
                                                                          reinterpret_cast<const float4*>(in), n4);
    PCM_CUDA_LAUNCH();
    return;
  }
  const int64_t per_block = vec4 ? 4 * kThreads : kThreads;
  const dim3 grid(static_cast<unsigned>(std::min<int64_t>((cols + per_block - 1) / per_block, 64)),
                  static_cast<unsigned>(std::min<int64_t>(rows, 65535)));
  if (vec4)
    to_bf16_2d_kernel<true><<<grid, kThreads, 0, s>>>(dst, in, rows, cols, ld);
  else
    to_bf16_2d_kernel<false><<<grid, kThreads, 0, s>>>(dst, in, rows, cols, ld);
  PCM_CUDA_LAUNCH();
}

int64_t column_sum_scratch_floats(int64_t C) { return kSplits * C; }

void column_sum_add(float* out, const float* in, int64_t stride, int64_t T, int64_t C, float* scratch,
                    cudaStream_t s) {
  if (C == 0) return;
  if (T == 0) return;
  column_partial_kernel<<<dim3(blocks_for(C, 128), kSplits), 128, 0, s>>>(scratch, in, stride, T, C);
  PCM_CUDA_LAUNCH();
  add_split_partials(out, scratch, C, kSplits, s);
}

void add_split_partials(float* out, const float* partial, int64_t n, int splits, cudaStream_t s) {
  if (n == 0) return;
  add_partials_kernel<<<blocks_for(n, 256), 256, 0, s>>>(out, partial, n, splits);
  PCM_CUDA_LAUNCH();
}

void sum_to_double(double* out, const float* in, int64_t n, cudaStream_t s) {
  sum_double_kernel<<<1, 1024, 0, s>>>(out, in, n);
  PCM_CUDA_LAUNCH();
}

int64_t sum_squares_scratch_doubles() { return kSqBlocks; }

void sum_squares(double* out, const float* x, int64_t n, double* scratch, cudaStream_t s, float f1, float f2) {
  sum_squares_partial_kernel<<<kSqBlocks, kSqThreads, 0, s>>>(scratch, x, n, f1, f2);
  PCM_CUDA_LAUNCH();
  sum_partials_double_kernel<<<1, kSqBlocks, 0, s>>>(out, scratch);
  PCM_CUDA_LAUNCH();
}

void scale(float* x, float factor, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  scale_kernel<<<blocks_for(n, 256), 256, 0, s>>>(x, factor, n);
  PCM_CUDA_LAUNCH();
}

void adamw(float* w, const float* g, float* m, float* v, int64_t n, const int64_t* run_end, const uint8_t* run_decay,
           int runs, const AdamWArgs& a, cudaStream_t s) {
  if (n == 0) return;
  PCM_CHECK(runs > 0, "CUDA AdamW: no runs for {} elements", n);
  for (const void* p : {static_cast<const void*>(w), static_cast<const void*>(g), static_cast<const void*>(m),
                        static_cast<const void*>(v)})
    PCM_CHECK(aligned(p, 16), "CUDA AdamW: buffers must be 16-byte aligned");
  adamw_kernel<<<blocks_for(n, 4 * kAdamThreads), kAdamThreads, 0, s>>>(w, g, m, v, n, run_end, run_decay, runs, a);
  PCM_CUDA_LAUNCH();
}

int64_t sum_split_partials_tmp_floats(int64_t n, int64_t splits) {
  return splits > 2 * kFold ? (splits + kFold - 1) / kFold * n : 0;
}

void sum_split_partials(float* out, const float* partial, int64_t n, int64_t splits, float* tmp, cudaStream_t s) {
  if (n == 0 || splits == 0) return;
  if (splits <= 2 * kFold) return add_split_partials(out, partial, n, static_cast<int>(splits), s);
  const int64_t groups = (splits + kFold - 1) / kFold;
  fold_partials_kernel<<<dim3(blocks_for(n, 256), static_cast<unsigned>(groups)), 256, 0, s>>>(tmp, partial, n, splits);
  PCM_CUDA_LAUNCH();
  add_split_partials(out, tmp, n, static_cast<int>(groups), s);
}

}  // namespace pcm::cuda
