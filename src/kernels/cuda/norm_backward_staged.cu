// The norm backwards with each row staged in shared memory: while a block reduces and writes row t, the
// cp.async copies of row t + 1 (gated: y, z, dout, 48 KB at 4096 channels) are in flight into the other of
// two stages. The register kernels in norm_backward.cu hold a row in registers (64 per thread for 1024
// threads per SM), so a block's loads stop while it finishes a row; here they never stop.
#include "kernels/cuda/cp_async.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/norm_backward_staged.h"

namespace pcm::cuda {
namespace {

constexpr int kTh = 256;
constexpr int kMaxPer = kStagedMaxGroup / (4 * kTh);  // float4 chunks per thread and row

__device__ __forceinline__ uint2 pack4(float a, float b, float c, float d) {
  __nv_bfloat162 lo = __floats2bfloat162_rn(a, b), hi = __floats2bfloat162_rn(c, d);
  uint2 p;
  p.x = *reinterpret_cast<uint32_t*>(&lo);
  p.y = *reinterpret_cast<uint32_t*>(&hi);
  return p;
}

// Both sums over the block, added in warp order (the same in every thread and every run); red is free
// again only after the caller's next barrier.
__device__ __forceinline__ void block_sums_in_order(float& ss, float& dot, float2* red) {
  ss = warp_sum(ss);
  dot = warp_sum(dot);
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = make_float2(ss, dot);
  __syncthreads();
  ss = 0.0f;
  dot = 0.0f;
#pragma unroll
  for (int w = 0; w < kTh / 32; ++w) {
    ss += red[w].x;
    dot += red[w].y;
  }
}

// The block's weight-gradient terms (float4 chunks q = threadIdx.x + j * kTh) as its one partial row.
__device__ __forceinline__ void write_partial(const float4 (&acc)[kMaxPer], float* row, int64_t n4) {
#pragma unroll
  for (int j = 0; j < kMaxPer; ++j) {
    const int64_t q = threadIdx.x + static_cast<int64_t>(j) * kTh;
    if (q < n4) *reinterpret_cast<float4*>(row + 4 * q) = acc[j];
  }
}

// 4 consecutive values of y or z from the stage: fp32, or (kBf16) bf16 in the first half of its part of the stage.
template <bool kBf16>
__device__ __forceinline__ float4 stage4(const float* ys, int64_t q) {
  if constexpr (kBf16) {
    const uint2 v = reinterpret_cast<const uint2*>(ys)[q];
    const float2 lo = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&v.x)),
                 hi = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&v.y));
    return make_float4(lo.x, lo.y, hi.x, hi.y);
  } else {
    return reinterpret_cast<const float4*>(ys)[q];
  }
}

// Rows [blockIdx.x * rows, +rows) of group blockIdx.y. Shared: 2 stages x {dout, y, z} x gs floats (kYBf16: y as
// bf16, the bf16 training's SSD output, in the first half of its part; kZBf16: z, the bf16 in_proj output, so).
template <bool kYBf16, bool kZBf16>
__global__ void __launch_bounds__(kTh, 2) gated_bwd_staged_kernel(StagedGatedArgs a, int64_t rows) {
  extern __shared__ float4 smem4[];
  float* smem = reinterpret_cast<float*>(smem4);
  __shared__ float2 red[kTh / 32];
  const int64_t gs = a.gs, c0 = blockIdx.y * gs, t0 = blockIdx.x * rows, t1 = min(a.T, t0 + rows);
  const int64_t n4 = gs / 4;
  auto stage = [&](int64_t t) { return smem + (t & 1) * 3 * gs; };
  auto issue = [&](int64_t t) {
    float* st = stage(t);
    for (int64_t q = threadIdx.x; q < n4; q += kTh) cp_async::copy16(st + 4 * q, a.dout + t * a.C + c0 + 4 * q, true);
    const int64_t yq = kYBf16 ? gs / 8 : n4, zq = kZBf16 ? gs / 8 : n4;  // 16-byte pieces of a row of y, of z
    const char* yrow = static_cast<const char*>(a.y) + (t * a.C + c0) * (kYBf16 ? 2 : 4);
    const char* zrow = static_cast<const char*>(a.z) + (t * a.z_stride + c0) * (kZBf16 ? 2 : 4);
    for (int64_t q = threadIdx.x; q < yq; q += kTh)
      cp_async::copy16(st + gs + 4 * q, reinterpret_cast<const float*>(yrow + 16 * q), true);
    for (int64_t q = threadIdx.x; q < zq; q += kTh)
      cp_async::copy16(st + 2 * gs + 4 * q, reinterpret_cast<const float*>(zrow + 16 * q), true);
    cp_async::commit();
  };
  float4 acc[kMaxPer];
#pragma unroll
  for (int j = 0; j < kMaxPer; ++j) acc[j] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  const float4* w4 = reinterpret_cast<const float4*>(a.w + c0);
  if (t0 < t1) issue(t0);
  for (int64_t t = t0; t < t1; ++t) {
    if (t + 1 < t1) {
      issue(t + 1);
      cp_async::wait_group<1>();
    } else {
      cp_async::wait_group<0>();
    }
    __syncthreads();  // row t's stage is complete for the whole block
    const float4* g4 = reinterpret_cast<const float4*>(stage(t));
    const float *ys = stage(t) + gs, *zs = stage(t) + 2 * gs;
    float ss = 0.0f, dot = 0.0f;
#pragma unroll
    for (int j = 0; j < kMaxPer; ++j) {
      const int64_t q = threadIdx.x + static_cast<int64_t>(j) * kTh;
      if (q < n4) {
        const float4 g = g4[q], yv = stage4<kYBf16>(ys, q), zv = stage4<kZBf16>(zs, q), wv = w4[q];
        const float v0 = yv.x * zv.x * sigmoid_fast(zv.x), v1 = yv.y * zv.y * sigmoid_fast(zv.y),
                    v2 = yv.z * zv.z * sigmoid_fast(zv.z), v3 = yv.w * zv.w * sigmoid_fast(zv.w);
        ss += v0 * v0 + v1 * v1 + v2 * v2 + v3 * v3;
        dot += g.x * wv.x * v0 + g.y * wv.y * v1 + g.z * wv.z * v2 + g.w * wv.w * v3;
      }
    }
    block_sums_in_order(ss, dot, red);
    const float r = rsqrtf(ss / static_cast<float>(gs) + a.eps);
    const float k = r * r * r * dot / static_cast<float>(gs);
#pragma unroll
    for (int j = 0; j < kMaxPer; ++j) {
      const int64_t q = threadIdx.x + static_cast<int64_t>(j) * kTh;
      if (q < n4) {
        const float4 g = g4[q], yv = stage4<kYBf16>(ys, q), zv = stage4<kZBf16>(zs, q), wv = w4[q];
        const float gi[4] = {g.x, g.y, g.z, g.w}, yi[4] = {yv.x, yv.y, yv.z, yv.w}, zi[4] = {zv.x, zv.y, zv.z, zv.w},
                    wi[4] = {wv.x, wv.y, wv.z, wv.w};
        float dyo[4], dzo[4], yno[4], acco[4];
#pragma unroll
        for (int u = 0; u < 4; ++u) {
          const float sg = sigmoid_fast(zi[u]), silu = zi[u] * sg, v = yi[u] * silu;
          const float dv = r * wi[u] * gi[u] - v * k;
          acco[u] = gi[u] * v * r;
          yno[u] = v * r * wi[u];
          dyo[u] = dv * silu;
          dzo[u] = dv * yi[u] * sg * (1.0f + zi[u] * (1.0f - sg));
        }
        acc[j].x += acco[0];
        acc[j].y += acco[1];
        acc[j].z += acco[2];
        acc[j].w += acco[3];
        const int64_t c = c0 + 4 * q;
        *reinterpret_cast<float4*>(a.dy + t * a.C + c) = make_float4(dyo[0], dyo[1], dyo[2], dyo[3]);
        if (a.dz) *reinterpret_cast<float4*>(a.dz + t * a.dz_stride + c) = make_float4(dzo[0], dzo[1], dzo[2], dzo[3]);
        if (a.dz16) *reinterpret_cast<uint2*>(a.dz16 + t * a.dz_stride + c) = pack4(dzo[0], dzo[1], dzo[2], dzo[3]);
        if (a.yn && a.yn_bf16)
          *reinterpret_cast<uint2*>(static_cast<uint16_t*>(a.yn) + t * a.C + c) = pack4(yno[0], yno[1], yno[2], yno[3]);
        else if (a.yn)
          *reinterpret_cast<float4*>(static_cast<float*>(a.yn) + t * a.C + c) =
              make_float4(yno[0], yno[1], yno[2], yno[3]);
      }
    }
    __syncthreads();  // every thread is done with this stage (and red) before it is filled again
  }
  write_partial(acc, a.partial + blockIdx.x * a.C + c0, n4);
}

// Rows [blockIdx.x * rows, +rows) of one RMSNorm backward: x, dout and (accumulate) dx's old value
// staged per row, as above. Shared: 2 stages x {x, dout, old dx} x C floats.
__global__ void __launch_bounds__(kTh, 4) rms_bwd_staged_kernel(StagedRmsArgs a, int64_t rows) {
  extern __shared__ float4 smem4[];
  float* smem = reinterpret_cast<float*>(smem4);
  __shared__ float2 red[kTh / 32];
  const int64_t C = a.C, t0 = blockIdx.x * rows, t1 = min(a.T, t0 + rows), n4 = C / 4;
  const int arrays = a.accumulate ? 3 : 2;
  auto stage = [&](int64_t t) { return smem + (t & 1) * 3 * C; };
  auto issue = [&](int64_t t) {
    float* st = stage(t);
    for (int64_t q = threadIdx.x; q < n4; q += kTh) {
      cp_async::copy16(st + 4 * q, a.x + t * C + 4 * q, true);
      cp_async::copy16(st + C + 4 * q, a.dout + t * C + 4 * q, true);
      if (arrays == 3) cp_async::copy16(st + 2 * C + 4 * q, a.dx + t * C + 4 * q, true);
    }
    cp_async::commit();
  };
  float4 acc[kMaxPer];
#pragma unroll
  for (int j = 0; j < kMaxPer; ++j) acc[j] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  const float4* w4 = reinterpret_cast<const float4*>(a.w);
  if (t0 < t1) issue(t0);
  for (int64_t t = t0; t < t1; ++t) {
    if (t + 1 < t1) {
      issue(t + 1);
      cp_async::wait_group<1>();
    } else {
      cp_async::wait_group<0>();
    }
    __syncthreads();
    const float4* x4 = reinterpret_cast<const float4*>(stage(t));
    const float4 *d4 = x4 + n4, *o4 = x4 + 2 * n4;
    float ss = 0.0f, dot = 0.0f;
#pragma unroll
    for (int j = 0; j < kMaxPer; ++j) {
      const int64_t q = threadIdx.x + static_cast<int64_t>(j) * kTh;
      if (q < n4) {
        const float4 xv = x4[q], dv = d4[q], wv = w4[q];
        ss += xv.x * xv.x + xv.y * xv.y + xv.z * xv.z + xv.w * xv.w;
        dot += dv.x * wv.x * xv.x + dv.y * wv.y * xv.y + dv.z * wv.z * xv.z + dv.w * wv.w * xv.w;
      }
    }
    block_sums_in_order(ss, dot, red);
    const float r = rsqrtf(ss / static_cast<float>(C) + a.eps);
    const float k = r * r * r * dot / static_cast<float>(C);
#pragma unroll
    for (int j = 0; j < kMaxPer; ++j) {
      const int64_t q = threadIdx.x + static_cast<int64_t>(j) * kTh;
      if (q < n4) {
        const float4 xv = x4[q], dv = d4[q], wv = w4[q];
        float4 g = make_float4(r * wv.x * dv.x - xv.x * k, r * wv.y * dv.y - xv.y * k, r * wv.z * dv.z - xv.z * k,
                               r * wv.w * dv.w - xv.w * k);
        if (a.accumulate) {
          const float4 ov = o4[q];
          g = make_float4(ov.x + g.x, ov.y + g.y, ov.z + g.z, ov.w + g.w);
        }
        acc[j].x += dv.x * xv.x * r;
        acc[j].y += dv.y * xv.y * r;
        acc[j].z += dv.z * xv.z * r;
        acc[j].w += dv.w * xv.w * r;
        *reinterpret_cast<float4*>(a.dx + t * C + 4 * q) = g;
        if (a.dx16) *reinterpret_cast<uint2*>(a.dx16 + t * C + 4 * q) = pack4(g.x, g.y, g.z, g.w);
        if (a.xn) {
          const float4 o = make_float4(xv.x * r * wv.x, xv.y * r * wv.y, xv.z * r * wv.z, xv.w * r * wv.w);
          if (a.xn_bf16)
            *reinterpret_cast<uint2*>(static_cast<uint16_t*>(a.xn) + t * C + 4 * q) = pack4(o.x, o.y, o.z, o.w);
          else
            *reinterpret_cast<float4*>(static_cast<float*>(a.xn) + t * C + 4 * q) = o;
        }
      }
    }
    __syncthreads();
  }
  write_partial(acc, a.partial + blockIdx.x * C, n4);
}

// Shared memory past 48 KB, set before every launch as the tc kernels do (mma_tf32::allow_smem): the
// attribute belongs to the current device, so a once-per-process flag would miss a second GPU.
template <class Kernel>
void allow_stage_smem(Kernel k) {
  PCM_CUDA(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                static_cast<int>(2 * 3 * kStagedMaxGroup * sizeof(float))));
}

}  // namespace

bool rms_bwd_staged_supported(const StagedRmsArgs& a) {
  return a.C % 4 == 0 && a.C <= kStagedMaxGroup && aligned(a.dx, 16) && aligned(a.dx16, 8) && aligned(a.x, 16) &&
         aligned(a.dout, 16) && aligned(a.w, 16) && aligned(a.partial, 16) && aligned(a.xn, 16);
}

void rms_bwd_staged(const StagedRmsArgs& a, int64_t rows_per_block, int64_t blocks, cudaStream_t s) {
  const size_t smem = 2 * 3 * static_cast<size_t>(a.C) * sizeof(float);
  allow_stage_smem(rms_bwd_staged_kernel);
  rms_bwd_staged_kernel<<<static_cast<unsigned>(blocks), kTh, smem, s>>>(a, rows_per_block);
  PCM_CUDA_LAUNCH();
}

bool gated_bwd_staged_supported(const StagedGatedArgs& a) {
  // bf16 y or z: whole 16-byte pieces of 8 values per row and group
  const bool y_ok = a.y_bf16 ? a.gs % 8 == 0 && a.C % 8 == 0 : true;
  const bool z_ok = a.z_bf16 ? a.gs % 8 == 0 && a.z_stride % 8 == 0 : a.z_stride % 4 == 0;
  return y_ok && z_ok && a.gs % 4 == 0 && a.gs <= kStagedMaxGroup && a.C % 4 == 0 && a.dz_stride % 4 == 0 &&
         aligned(a.dy, 16) && aligned(a.dz, 16) && aligned(a.dz16, 8) && aligned(a.yn, 16) && aligned(a.dout, 16) &&
         aligned(a.y, 16) && aligned(a.z, 16) && aligned(a.w, 16) && aligned(a.partial, 16);
}

void gated_bwd_staged(const StagedGatedArgs& a, int64_t rows_per_block, int64_t blocks, cudaStream_t s) {
  const size_t smem = 2 * 3 * static_cast<size_t>(a.gs) * sizeof(float);
  auto kernel = a.y_bf16 ? (a.z_bf16 ? gated_bwd_staged_kernel<true, true> : gated_bwd_staged_kernel<true, false>)
                         : (a.z_bf16 ? gated_bwd_staged_kernel<false, true> : gated_bwd_staged_kernel<false, false>);
  allow_stage_smem(kernel);
  const dim3 grid(static_cast<unsigned>(blocks), static_cast<unsigned>(a.C / a.gs));
  kernel<<<grid, kTh, smem, s>>>(a, rows_per_block);
  PCM_CUDA_LAUNCH();
}

}  // namespace pcm::cuda
