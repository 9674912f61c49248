// Row-wise kernels of the forward pass: embedding gather, RMSNorm, grouped gated RMSNorm, bias, dt.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/ops.h"

namespace pcm::cuda {
namespace {

template <class W>
__global__ void embedding_kernel(float* resid, const W* emb, const int32_t* tokens, int64_t d) {
  const int64_t t = blockIdx.x;  // rows on x: no 65535 limit
  const W* row = emb + static_cast<int64_t>(tokens[t]) * d;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) resid[t * d + i] = to_float(row[i]);
}

// One block per row. The row is read once into registers (kVpt values per thread, strided so the loads
// are coalesced), which keeps the single-row decode case at one round trip to memory.
constexpr int kNormThreads = 256, kVpt = 16;

template <class O>
__global__ void __launch_bounds__(kNormThreads) rmsnorm_kernel(O* out, const float* in, const float* weight,
                                                               int64_t C, float eps) {
  __shared__ float red[32];
  const int64_t t = blockIdx.x;
  const float* x = in + t * C;
  float v[kVpt], wt[kVpt];
#pragma unroll
  for (int u = 0; u < kVpt; ++u) {  // constant: loaded while the kernel before still runs, not after the reduction
    const int64_t i = threadIdx.x + static_cast<int64_t>(u) * kNormThreads;
    wt[u] = i < C ? weight[i] : 0.0f;
  }
  pdl_wait();  // launched with PDL: x is the previous kernel's output (in decode, out_proj's residual add)
  float ss = 0.0f;
#pragma unroll
  for (int u = 0; u < kVpt; ++u) {
    const int64_t i = threadIdx.x + static_cast<int64_t>(u) * kNormThreads;
    v[u] = i < C ? x[i] : 0.0f;
    ss += v[u] * v[u];
  }
  ss = block_sum(ss, red);
  const float r = rsqrtf(ss / static_cast<float>(C) + eps);
#pragma unroll
  for (int u = 0; u < kVpt; ++u) {
    const int64_t i = threadIdx.x + static_cast<int64_t>(u) * kNormThreads;
    if (i < C) out[t * C + i] = from_float<O>(v[u] * r * wt[u]);
  }
}

// One block per (row, group); g = y * silu(z) kept in registers between the two steps. Y: y in fp32 or bf16 (the
// SSD prefill of bf16 models writes it so).
template <class O, class Y, class Z>
__global__ void __launch_bounds__(kNormThreads) gated_rmsnorm_kernel(O* out, const Y* y, const Z* z,
                                                                     int64_t z_stride, const float* weight, int64_t C,
                                                                     int64_t gs, float eps) {
  __shared__ float red[32];
  const int64_t t = blockIdx.x, g0 = blockIdx.y * gs;
  float v[kVpt], wt[kVpt];
#pragma unroll
  for (int u = 0; u < kVpt; ++u) {  // constant: loaded while the step still runs
    const int64_t i = threadIdx.x + static_cast<int64_t>(u) * kNormThreads;
    wt[u] = i < gs ? weight[g0 + i] : 0.0f;
  }
  pdl_wait();  // launched with PDL: y is the SSD step's output
  float ss = 0.0f;
#pragma unroll
  for (int u = 0; u < kVpt; ++u) {
    const int64_t i = threadIdx.x + static_cast<int64_t>(u) * kNormThreads;
    v[u] = i < gs ? to_float(y[t * C + g0 + i]) * silu_f(to_float(z[t * z_stride + g0 + i])) : 0.0f;
    ss += v[u] * v[u];
  }
  ss = block_sum(ss, red);
  const float r = rsqrtf(ss / static_cast<float>(gs) + eps);
#pragma unroll
  for (int u = 0; u < kVpt; ++u) {
    const int64_t i = threadIdx.x + static_cast<int64_t>(u) * kNormThreads;
    if (i < gs) out[t * C + g0 + i] = from_float<O>(v[u] * r * wt[u]);
  }
}

// Warp per (row, group) when the group is a multiple of 32 L channels and at most 1024: each lane takes L
// consecutive values per step (L = 8 when y and z are both bf16: 16-byte loads, as L = 4 gives fp32), the group
// held in registers, a warp reduction instead of a block barrier (the prefill case). At 8-byte bf16 loads (L = 4)
// the codestral-7b prefill's norm took 302 µs per layer at T=16384 (H200, 2026-12-04).
constexpr int kGroupVec = 8;  // float4s per lane: up to 1024 channels

__device__ __forceinline__ void store4(float* o, const float4& v) { *reinterpret_cast<float4*>(o) = v; }
__device__ __forceinline__ void store4(__nv_bfloat16* o, const float4& v) {
  *reinterpret_cast<uint2*>(o) = pack_bf16x4(v);
}
// 4 consecutive values from 16 (fp32) or 8 (bf16) aligned bytes.
__device__ __forceinline__ float4 load4(const float* p) { return *reinterpret_cast<const float4*>(p); }
__device__ __forceinline__ float4 load4(const __nv_bfloat16* p) {
  const uint2 u = *reinterpret_cast<const uint2*>(p);
  return unpack_bf16x4(u.x, u.y);
}
// L consecutive values (L / 4 float4s): one 16-byte access per 16 bytes.
template <int L>
__device__ __forceinline__ void load_lane(const float* p, float4* v) {
#pragma unroll
  for (int m = 0; m < L / 4; ++m) v[m] = load4(p + 4 * m);
}
template <int L>
__device__ __forceinline__ void load_lane(const __nv_bfloat16* p, float4* v) {
  if constexpr (L == 8) {
    const uint4 u = *reinterpret_cast<const uint4*>(p);
    v[0] = unpack_bf16x4(u.x, u.y);
    v[1] = unpack_bf16x4(u.z, u.w);
  } else {
    v[0] = load4(p);
  }
}
template <int L>
__device__ __forceinline__ void store_lane(float* o, const float4* v) {
#pragma unroll
  for (int m = 0; m < L / 4; ++m) store4(o + 4 * m, v[m]);
}
template <int L>
__device__ __forceinline__ void store_lane(__nv_bfloat16* o, const float4* v) {
  if constexpr (L == 8) {
    const uint2 lo = pack_bf16x4(v[0]), hi = pack_bf16x4(v[1]);
    *reinterpret_cast<uint4*>(o) = make_uint4(lo.x, lo.y, hi.x, hi.y);
  } else
    store4(o, v[0]);
}

template <class O, class Y, class Z, int L>
__global__ void __launch_bounds__(256) gated_rmsnorm_warp_kernel(O* out, const Y* y, const Z* z,
                                                                 int64_t z_stride, const float* weight, int64_t T,
                                                                 int64_t C, int64_t gs, int64_t groups, float eps) {
  constexpr int M = L / 4, kSteps = kGroupVec / M;  // float4s per step, steps at most
  pdl_wait();  // launched with PDL: y is the SSD step's output
  const int lane = threadIdx.x & 31;
  const int64_t item = static_cast<int64_t>(blockIdx.x) * 8 + (threadIdx.x >> 5);
  if (item >= T * groups) return;
  const int64_t t = item / groups, g0 = (item % groups) * gs;
  const int steps = static_cast<int>(gs / (32 * L));
  const Y* yr = y + t * C + g0;
  const Z* zr = z + t * z_stride + g0;
  float4 v[kGroupVec];
  float ss = 0.0f;
#pragma unroll
  for (int u = 0; u < kSteps; ++u) {
    if (u < steps) {
      float4 a[M], b[M];
      load_lane<L>(yr + L * (u * 32 + lane), a);
      load_lane<L>(zr + L * (u * 32 + lane), b);
#pragma unroll
      for (int m = 0; m < M; ++m) {
        float4& g = v[u * M + m];
        g = make_float4(a[m].x * silu_f(b[m].x), a[m].y * silu_f(b[m].y), a[m].z * silu_f(b[m].z),
                        a[m].w * silu_f(b[m].w));
        ss += g.x * g.x + g.y * g.y + g.z * g.z + g.w * g.w;
      }
    }
  }
  ss = warp_sum(ss);
  const float r = rsqrtf(ss / static_cast<float>(gs) + eps);
#pragma unroll
  for (int u = 0; u < kSteps; ++u) {
    if (u < steps) {
      const int i = (u * 32 + lane) * L;
      float4 o[M];
#pragma unroll
      for (int m = 0; m < M; ++m) {
        const float4 wt = *reinterpret_cast<const float4*>(weight + g0 + i + 4 * m);
        const float4& g = v[u * M + m];
        o[m] = make_float4(g.x * r * wt.x, g.y * r * wt.y, g.z * r * wt.z, g.w * r * wt.w);
      }
      store_lane<L>(out + t * C + g0 + i, o);
    }
  }
}

// Block per (row, group) with 16-byte loads when the group is a multiple of 1024 channels, up to 4096
// (a single group of a wide model, e.g. mamba2-1.3b's 4096): each thread holds up to 4 float4s.
constexpr int kBlockVec = 4;

template <class O, class Y, class Z>
__global__ void __launch_bounds__(kNormThreads) gated_rmsnorm_vec_kernel(O* out, const Y* y, const Z* z,
                                                                         int64_t z_stride, const float* weight,
                                                                         int64_t C, int64_t gs, float eps) {
  __shared__ float red[32];
  const int64_t t = blockIdx.x, g0 = blockIdx.y * gs;
  const int nv = static_cast<int>(gs / (4 * kNormThreads));
  const Y* yr = y + t * C + g0;
  const Z* zr = z + t * z_stride + g0;
  float4 v[kBlockVec], wt[kBlockVec];
#pragma unroll
  for (int u = 0; u < kBlockVec; ++u)  // constant: loaded while the step still runs
    if (u < nv) wt[u] = *reinterpret_cast<const float4*>(weight + g0 + 4 * (u * kNormThreads + threadIdx.x));
  pdl_wait();  // launched with PDL: y is the SSD step's output
  float ss = 0.0f;
#pragma unroll
  for (int u = 0; u < kBlockVec; ++u) {
    if (u < nv) {
      const int i = 4 * (u * kNormThreads + threadIdx.x);
      const float4 a = load4(yr + i), b = load4(zr + i);
      v[u] = make_float4(a.x * silu_f(b.x), a.y * silu_f(b.y), a.z * silu_f(b.z), a.w * silu_f(b.w));
      ss += v[u].x * v[u].x + v[u].y * v[u].y + v[u].z * v[u].z + v[u].w * v[u].w;
    }
  }
  ss = block_sum(ss, red);
  const float r = rsqrtf(ss / static_cast<float>(gs) + eps);
#pragma unroll
  for (int u = 0; u < kBlockVec; ++u) {
    if (u < nv) {
      const int i = (u * kNormThreads + threadIdx.x) * 4;
      store4(out + t * C + g0 + i, make_float4(v[u].x * r * wt[u].x, v[u].y * r * wt[u].y, v[u].z * r * wt[u].z,
                                               v[u].w * r * wt[u].w));
    }
  }
}

__global__ void add_bias_kernel(float* x, int64_t stride, const float* bias, int64_t T, int64_t C) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < T * C) x[(i / C) * stride + i % C] += bias[i % C];
}

template <class R>
__global__ void dt_kernel(float* dt, const R* raw, int64_t stride, const float* dt_bias, int64_t T, int64_t H,
                          float lo, float hi) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= T * H) return;
  const int64_t t = i / H, h = i % H;
  dt[i] = softplus_clamp(to_float(raw[t * stride + h]) + dt_bias[h], lo, hi);
}

__global__ void f32_to_bf16_kernel(__nv_bfloat16* out, const float* in, int64_t n) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) out[i] = __float2bfloat16(in[i]);
}
__global__ void bf16_to_f32_kernel(float* out, const __nv_bfloat16* in, int64_t n) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) out[i] = __bfloat162float(in[i]);
}

// Counter-based (splitmix64) uniform draws with the std of N(0, stddev): reproducible, any launch shape.
__global__ void fill_uniform_kernel(__nv_bfloat16* out, int64_t n, float stddev, uint64_t seed) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(i + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const float u = static_cast<float>(z >> 40) * (1.0f / 16777216.0f);  // [0, 1)
    out[i] = __float2bfloat16((2.0f * u - 1.0f) * stddev * 1.7320508f);
  }
}

}  // namespace

void embedding_gather(float* resid, const void* embedding, bool bf16, const int32_t* tokens, int64_t T, int64_t d,
                      cudaStream_t s) {
  if (T == 0) return;
  const unsigned grid = static_cast<unsigned>(T);
  if (bf16)
    embedding_kernel<<<grid, 256, 0, s>>>(resid, static_cast<const __nv_bfloat16*>(embedding), tokens, d);
  else
    embedding_kernel<<<grid, 256, 0, s>>>(resid, static_cast<const float*>(embedding), tokens, d);
  PCM_CUDA_LAUNCH();
}

void rmsnorm(void* out, bool bf16, const float* in, const float* weight, int64_t T, int64_t C, float eps,
             cudaStream_t s) {
  if (T == 0) return;
  PCM_CHECK(C <= kNormThreads * kVpt, "CUDA RMSNorm: {} channels exceed {}", C, kNormThreads * kVpt);
  // PDL: the launch and the weight loads overlap the end of the kernel before (a cuBLASLt GEMM in decode)
  if (bf16)
    PCM_CUDA(launch_pdl(rmsnorm_kernel<__nv_bfloat16>, dim3(static_cast<unsigned>(T)), dim3(kNormThreads), 0, s,
                        static_cast<__nv_bfloat16*>(out), in, weight, C, eps));
  else
    PCM_CUDA(launch_pdl(rmsnorm_kernel<float>, dim3(static_cast<unsigned>(T)), dim3(kNormThreads), 0, s,
                        static_cast<float*>(out), in, weight, C, eps));
}

namespace {
template <class Y, class Z>
void gated_rmsnorm_launch(void* out, bool bf16, const Y* y, const Z* z, int64_t z_stride, const float* weight,
                          int64_t T, int64_t C, int64_t group_size, float eps, cudaStream_t s) {
  const int64_t groups = C / group_size;
  // Launched with programmatic dependent launch: in decode it follows the SSD step, which lets it launch once
  // all the step's blocks have started, so its launch and block start overlap the step's last wave.
  // A warp per group pays off with many rows; a few rows (decode) want a whole block per group: at 128 rows
  // of 8 groups the warp kernel (128 blocks) took 8.9 µs where the block kernel took 3.2 at 64 rows (H200,
  // bench/cuda_notes.md decode v11), so the warp kernel starts at 2048 (row, group) items.
  const bool vec_ok = C % 4 == 0 && z_stride % 4 == 0 && aligned(y, 16) && aligned(z, 4 * sizeof(Z)) &&
                      aligned(weight, 16) && aligned(out, 8) && (bf16 || aligned(out, 16));
  // 16-byte bf16 accesses (L = 8) when y, z and a bf16 output are all bf16 and 16-byte aligned
  constexpr bool kAllBf16 = sizeof(Y) == 2 && sizeof(Z) == 2;
  const bool wide =
      kAllBf16 && bf16 && group_size % 256 == 0 && C % 8 == 0 && z_stride % 8 == 0 && aligned(z, 16) &&
      aligned(out, 16);
  if (T * groups >= 2048 && group_size % 128 == 0 && group_size <= 128 * kGroupVec && vec_ok) {
    const unsigned blocks = blocks_for(T * groups, 8);
    if constexpr (kAllBf16) {
      if (wide) {
        PCM_CUDA(launch_pdl(gated_rmsnorm_warp_kernel<__nv_bfloat16, Y, Z, 8>, dim3(blocks), dim3(256), 0, s,
                            static_cast<__nv_bfloat16*>(out), y, z, z_stride, weight, T, C, group_size, groups, eps));
        return;
      }
    }
    if (bf16)
      PCM_CUDA(launch_pdl(gated_rmsnorm_warp_kernel<__nv_bfloat16, Y, Z, 4>, dim3(blocks), dim3(256), 0, s,
                          static_cast<__nv_bfloat16*>(out), y, z, z_stride, weight, T, C, group_size, groups, eps));
    else
      PCM_CUDA(launch_pdl(gated_rmsnorm_warp_kernel<float, Y, Z, 4>, dim3(blocks), dim3(256), 0, s,
                          static_cast<float*>(out), y, z, z_stride, weight, T, C, group_size, groups, eps));
    return;
  }
  dim3 grid(static_cast<unsigned>(T), static_cast<unsigned>(groups));
  if (group_size % (4 * kNormThreads) == 0 && group_size <= 4 * kNormThreads * kBlockVec && vec_ok) {
    if (bf16)
      PCM_CUDA(launch_pdl(gated_rmsnorm_vec_kernel<__nv_bfloat16, Y, Z>, grid, dim3(kNormThreads), 0, s,
                          static_cast<__nv_bfloat16*>(out), y, z, z_stride, weight, C, group_size, eps));
    else
      PCM_CUDA(launch_pdl(gated_rmsnorm_vec_kernel<float, Y, Z>, grid, dim3(kNormThreads), 0, s,
                          static_cast<float*>(out), y, z, z_stride, weight, C, group_size, eps));
    return;
  }
  if (bf16)
    PCM_CUDA(launch_pdl(gated_rmsnorm_kernel<__nv_bfloat16, Y, Z>, grid, dim3(kNormThreads), 0, s,
                        static_cast<__nv_bfloat16*>(out), y, z, z_stride, weight, C, group_size, eps));
  else
    PCM_CUDA(launch_pdl(gated_rmsnorm_kernel<float, Y, Z>, grid, dim3(kNormThreads), 0, s, static_cast<float*>(out), y,
                        z, z_stride, weight, C, group_size, eps));
}
}  // namespace

void gated_rmsnorm(void* out, bool bf16, const void* y, const void* z, int64_t z_stride, const float* weight,
                   int64_t T, int64_t C, int64_t group_size, float eps, cudaStream_t s, bool y_bf16, bool z_bf16) {
  if (T == 0) return;
  PCM_CHECK(group_size <= kNormThreads * kVpt, "CUDA gated RMSNorm: group of {} channels exceeds {}", group_size,
            kNormThreads * kVpt);
  PCM_CHECK(!z_bf16 || y_bf16, "CUDA gated RMSNorm: z in bf16 only with y in bf16");
  using bf = __nv_bfloat16;
  if (z_bf16)
    gated_rmsnorm_launch(out, bf16, static_cast<const bf*>(y), static_cast<const bf*>(z), z_stride, weight, T, C,
                         group_size, eps, s);
  else if (y_bf16)
    gated_rmsnorm_launch(out, bf16, static_cast<const bf*>(y), static_cast<const float*>(z), z_stride, weight, T, C,
                         group_size, eps, s);
  else
    gated_rmsnorm_launch(out, bf16, static_cast<const float*>(y), static_cast<const float*>(z), z_stride, weight, T,
                         C, group_size, eps, s);
}

void add_bias(float* x, int64_t stride, const float* bias, int64_t T, int64_t C, cudaStream_t s) {
  if (T * C == 0) return;
  add_bias_kernel<<<blocks_for(T * C, 256), 256, 0, s>>>(x, stride, bias, T, C);
  PCM_CUDA_LAUNCH();
}

void dt_softplus(float* dt, const void* raw, int64_t stride, const float* dt_bias, int64_t T, int64_t H, float lo,
                 float hi, cudaStream_t s, bool raw_bf16) {
  if (T * H == 0) return;
  if (raw_bf16)
    dt_kernel<<<blocks_for(T * H, 256), 256, 0, s>>>(dt, static_cast<const __nv_bfloat16*>(raw), stride, dt_bias, T,
                                                     H, lo, hi);
  else
    dt_kernel<<<blocks_for(T * H, 256), 256, 0, s>>>(dt, static_cast<const float*>(raw), stride, dt_bias, T, H, lo,
                                                     hi);
  PCM_CUDA_LAUNCH();
}

void f32_to_bf16(uint16_t* out, const float* in, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  f32_to_bf16_kernel<<<blocks_for(n, 256), 256, 0, s>>>(reinterpret_cast<__nv_bfloat16*>(out), in, n);
  PCM_CUDA_LAUNCH();
}
void bf16_to_f32(float* out, const uint16_t* in, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  bf16_to_f32_kernel<<<blocks_for(n, 256), 256, 0, s>>>(out, reinterpret_cast<const __nv_bfloat16*>(in), n);
  PCM_CUDA_LAUNCH();
}
void fill_uniform_bf16(uint16_t* out, int64_t n, float stddev, uint64_t seed, cudaStream_t s) {
  if (n == 0) return;
  fill_uniform_kernel<<<4096, 256, 0, s>>>(reinterpret_cast<__nv_bfloat16*>(out), n, stddev, seed);
  PCM_CUDA_LAUNCH();
}

}  // namespace pcm::cuda
