// Causal depthwise conv1d + SiLU: packed prefill (each sequence continuing from its conv window) and the
// decode step (rolling window, one token per slot).
#include <cuda_bf16.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/ops.h"

namespace pcm::cuda {
namespace {

constexpr int kMaxK = 8;

// Thread per (channel, run of kRun consecutive rows): each input row is loaded once into a register
// window and reused by the K outputs that need it. Rows before a sequence's first row in this call come
// from that sequence's conv window (runs may cross sequence boundaries).
constexpr int kRun = 8;

// bf16_out: columns [0, bf16_cols) also there as bf16, row stride bf16_cols (null: none); out gets [fp32_from, C).
// In: the input's type (fp32, or bf16 from a bf16 in_proj).
template <class In>
__global__ void conv_prefill_kernel(float* out, const In* in, int64_t in_stride, const float* conv_state,
                                    int64_t slot_stride, const float* w, const float* bias, int64_t T, int64_t C,
                                    int K, PackedSeqs seqs, __nv_bfloat16* bf16_out, int64_t bf16_cols,
                                    int64_t fp32_from) {
  const int64_t t0 = static_cast<int64_t>(blockIdx.x) * kRun;
  const int64_t c = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float wk[kMaxK];
#pragma unroll
  for (int k = 0; k < kMaxK; ++k) wk[k] = k < K ? w[c * K + k] : 0.0f;
  const float b = bias[c];
  float hist[kMaxK - 1 + kRun];  // hist[q] = input row t0 - (K - 1) + q
#pragma unroll
  for (int q = 0; q < kMaxK - 1 + kRun; ++q) {
    const int64_t t = t0 - (K - 1) + q;
    hist[q] = (q < K - 1 + kRun && t >= 0 && t < T) ? to_float(in[t * in_stride + c]) : 0.0f;
  }
#pragma unroll
  for (int r = 0; r < kRun; ++r) {
    const int64_t t = t0 + r;
    if (t >= T) break;
    const int sq = seqs.row_seq[t];
    const int64_t local = t - seqs.seq_start[sq];
    const float* win = conv_state + seqs.seq_slot[sq] * slot_stride + c * K;
    float acc = b;
#pragma unroll
    for (int k = 0; k < kMaxK; ++k) {
      if (k < K) {
        const int64_t j = local - (K - 1) + k;  // position inside this call's rows of the sequence
        acc += wk[k] * (j >= 0 ? hist[r + k] : win[K + j]);
      }
    }
    const float v = silu_f(acc);
    if (bf16_out && c < bf16_cols) bf16_out[t * bf16_cols + c] = __float2bfloat16_rn(v);
    if (c >= fp32_from) out[t * C + c] = v;
  }
}

// K = 4 with 16-byte aligned rows: thread per (4 channels, run of kRun4 rows), float4 loads and stores.
// Blocks along x cover a row's channels, so the blocks running together read whole rows (the generic kernel's
// grid walked down 512-byte strips). A run inside one sequence, past its first K - 1 rows, needs no window.
// Runs of 8 rows: 80 registers, 6 blocks per SM; 16 rows (124 registers, 4 blocks) took 482 against 384 µs per
// layer of the codestral-7b prefill at T=16384, 32 rows slower still (H200, bench/cuda_notes.md prefill v12).
constexpr int kRun4 = 8;

// 4 consecutive inputs from 16 (fp32) or 8 (bf16) aligned bytes.
__device__ __forceinline__ float4 load_in4(const float* p) { return *reinterpret_cast<const float4*>(p); }
__device__ __forceinline__ float4 load_in4(const __nv_bfloat16* p) {
  const uint2 u = *reinterpret_cast<const uint2*>(p);
  return make_float4(__uint_as_float(u.x << 16), __uint_as_float(u.x & 0xffff0000u), __uint_as_float(u.y << 16),
                     __uint_as_float(u.y & 0xffff0000u));
}

template <class In>
__global__ void conv_prefill4_kernel(float4* out, const In* in, int64_t in_stride, const float* conv_state,
                                     int64_t slot_stride, const float4* w, const float4* bias, int64_t T, int64_t C4,
                                     PackedSeqs seqs, uint2* bf16_out, int64_t bf16_c4, int64_t fp32_from4) {
  const int64_t c4 = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t t0 = static_cast<int64_t>(blockIdx.y) * kRun4;
  if (c4 >= C4) return;
  float4 hist[3 + kRun4];  // hist[q] = input row t0 - 3 + q, channels 4 c4 .. 4 c4 + 3
#pragma unroll
  for (int q = 0; q < 3 + kRun4; ++q) {
    const int64_t t = t0 - 3 + q;
    hist[q] = (t >= 0 && t < T) ? load_in4(in + t * in_stride + 4 * c4) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  }
  const float4 w0 = w[4 * c4], w1 = w[4 * c4 + 1], w2 = w[4 * c4 + 2], w3 = w[4 * c4 + 3], b = bias[c4];
  const int64_t t_last = min(t0 + kRun4, T) - 1;
  const int sq0 = seqs.row_seq[t0];
  const bool inside = seqs.row_seq[t_last] == sq0 && t0 - seqs.seq_start[sq0] >= 3;
#pragma unroll
  for (int r = 0; r < kRun4; ++r) {
    const int64_t t = t0 + r;
    if (t >= T) break;
    float4 x[4] = {hist[r], hist[r + 1], hist[r + 2], hist[r + 3]};  // taps k = 0..3: rows t - 3 + k
    if (!inside) {  // rows before the sequence's first row in this call come from its window
      const int sq = seqs.row_seq[t];
      const int64_t local = t - seqs.seq_start[sq];
      const float* win = conv_state + seqs.seq_slot[sq] * slot_stride + 16 * c4;  // [4 channels][K = 4]
#pragma unroll
      for (int k = 0; k < 3; ++k) {
        const int64_t j = local - 3 + k;
        if (j < 0) x[k] = make_float4(win[4 + j], win[8 + j], win[12 + j], win[16 + j]);
      }
    }
    // channel i of the four uses taps w_i = (x, y, z, w) of its own float4
    float4 acc = b;
    acc.x += w0.x * x[0].x + w0.y * x[1].x + w0.z * x[2].x + w0.w * x[3].x;
    acc.y += w1.x * x[0].y + w1.y * x[1].y + w1.z * x[2].y + w1.w * x[3].y;
    acc.z += w2.x * x[0].z + w2.y * x[1].z + w2.z * x[2].z + w2.w * x[3].z;
    acc.w += w3.x * x[0].w + w3.y * x[1].w + w3.z * x[2].w + w3.w * x[3].w;
    const float4 v = make_float4(silu_f(acc.x), silu_f(acc.y), silu_f(acc.z), silu_f(acc.w));
    if (bf16_out && c4 < bf16_c4) {
      const __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y), hi = __floats2bfloat162_rn(v.z, v.w);
      bf16_out[t * bf16_c4 + c4] =
          make_uint2(*reinterpret_cast<const uint32_t*>(&lo), *reinterpret_cast<const uint32_t*>(&hi));
    }
    if (c4 >= fp32_from4) out[t * C4 + c4] = v;
  }
}

// After the conv: each window takes its sequence's last K inputs (older window entries when shorter).
// One thread per (sequence, channel) walks k upwards, so it reads win[len + k] before overwriting it.
template <class In>
__global__ void conv_window_kernel(const In* in, int64_t in_stride, float* conv_state, int64_t slot_stride,
                                   int64_t C, int K, PackedSeqs seqs) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= static_cast<int64_t>(seqs.count) * C) return;
  const int sq = static_cast<int>(i / C);
  const int64_t c = i % C, begin = seqs.seq_start[sq], len = seqs.seq_start[sq + 1] - begin;
  float* win = conv_state + seqs.seq_slot[sq] * slot_stride + c * K;
  for (int k = 0; k < K; ++k) {
    const int64_t j = len - K + k;
    win[k] = j >= 0 ? to_float(in[(begin + j) * in_stride + c]) : win[len + k];
  }
}

// Decode thread i works on (sequence b, channel c) of slot `slot`; false for threads past the end, and for
// rows without a sequence (slot < 0), whose output is zeroed.
__device__ bool decode_lane(int64_t i, int64_t Bn, int64_t C, const int32_t* slots, float* out, int64_t& b,
                            int64_t& c, int& slot) {
  if (i >= Bn * C) return false;
  b = i / C;
  c = i % C;
  slot = slots[b];
  if (slot < 0) out[i] = 0.0f;
  return slot >= 0;
}

__global__ void conv_decode_kernel(float* out, const float* in, int64_t in_stride, float* conv_state,
                                   int64_t slot_stride, const float* w, const float* bias, const int32_t* slots,
                                   int64_t Bn, int64_t C, int K) {
  pdl_wait();  // launched with programmatic dependent launch: in_proj's output
  pdl_trigger();
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  int64_t b, c;
  int slot;
  if (!decode_lane(i, Bn, C, slots, out, b, c, slot)) return;
  float* win = conv_state + slot * slot_stride + c * K;
  float v[kMaxK];
#pragma unroll
  for (int k = 0; k < kMaxK; ++k)
    if (k < K - 1) v[k] = win[k + 1];
  const float x = in[b * in_stride + c];
  float acc = bias[c];
#pragma unroll
  for (int k = 0; k < kMaxK; ++k)
    if (k < K - 1) acc += w[c * K + k] * v[k];
  acc += w[c * K + K - 1] * x;
#pragma unroll
  for (int k = 0; k < kMaxK; ++k)
    if (k < K - 1) win[k] = v[k];
  win[K - 1] = x;
  out[i] = silu_f(acc);
}

// K = 4 (every published Mamba-2): the window is one aligned float4, loaded and stored whole.
__global__ void conv_decode4_kernel(float* out, const float* in, int64_t in_stride, float* conv_state,
                                    int64_t slot_stride, const float4* w, const float* bias, const int32_t* slots,
                                    int64_t Bn, int64_t C) {
  pdl_wait();
  pdl_trigger();  // the SSD step after this starts bringing in its state tiles while this kernel runs
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  int64_t b, c;
  int slot;
  if (!decode_lane(i, Bn, C, slots, out, b, c, slot)) return;
  float4* win = reinterpret_cast<float4*>(conv_state + slot * slot_stride) + c;
  const float4 v = *win, wc = w[c];
  const float x = in[b * in_stride + c];
  const float acc = bias[c] + wc.x * v.y + wc.y * v.z + wc.z * v.w + wc.w * x;
  *win = make_float4(v.y, v.z, v.w, x);
  out[i] = silu_f(acc);
}

}  // namespace

namespace {
template <class In>
void conv_prefill_launch(float* out, const In* in, int64_t in_stride, float* conv_state, int64_t slot_stride,
                         const float* w, const float* bias, int64_t T, int64_t C, int64_t K, const PackedSeqs& seqs,
                         cudaStream_t s, const ConvBf16Out& bf16) {
  auto aligned = [](const void* p, uintptr_t n) { return reinterpret_cast<uintptr_t>(p) % n == 0; };
  const int64_t bf16_cols = bf16.out ? bf16.cols : 0, fp32_from = bf16.out ? bf16.fp32_from : 0;
  const bool copy4 = !bf16.out || (bf16_cols % 4 == 0 && fp32_from % 4 == 0 && aligned(bf16.out, 8));
  if (K == 4 && C % 4 == 0 && in_stride % 4 == 0 && aligned(out, 16) && aligned(in, 4 * sizeof(In)) &&
      aligned(w, 16) && aligned(bias, 16) && copy4) {
    const int64_t C4 = C / 4;
    conv_prefill4_kernel<In><<<dim3(blocks_for(C4, 128), blocks_for(T, kRun4)), 128, 0, s>>>(
        reinterpret_cast<float4*>(out), in, in_stride, conv_state, slot_stride, reinterpret_cast<const float4*>(w),
        reinterpret_cast<const float4*>(bias), T, C4, seqs, static_cast<uint2*>(bf16.out), bf16_cols / 4,
        fp32_from / 4);
  } else {
    conv_prefill_kernel<In><<<dim3(blocks_for(T, kRun), blocks_for(C, 128)), 128, 0, s>>>(
        out, in, in_stride, conv_state, slot_stride, w, bias, T, C, static_cast<int>(K), seqs,
        static_cast<__nv_bfloat16*>(bf16.out), bf16_cols, fp32_from);
  }
  PCM_CUDA_LAUNCH();
  conv_window_kernel<In><<<blocks_for(seqs.count * C, 256), 256, 0, s>>>(in, in_stride, conv_state, slot_stride, C,
                                                                         static_cast<int>(K), seqs);
  PCM_CUDA_LAUNCH();
}
}  // namespace

void conv1d_silu_prefill(float* out, const void* in, int64_t in_stride, float* conv_state, int64_t slot_stride,
                         const float* w, const float* bias, int64_t T, int64_t C, int64_t K, const PackedSeqs& seqs,
                         cudaStream_t s, const ConvBf16Out& bf16) {
  PCM_CHECK(K >= 1 && K <= kMaxK, "conv kernel size {} not supported by the CUDA backend (1..{})", K, kMaxK);
  PCM_CHECK(!bf16.out || (bf16.cols > 0 && bf16.cols <= C && bf16.fp32_from >= 0 && bf16.fp32_from <= bf16.cols),
            "conv: bf16 output of {} of {} columns, fp32 from column {}", bf16.cols, C, bf16.fp32_from);
  if (T == 0) return;
  if (bf16.in_bf16)
    conv_prefill_launch(out, static_cast<const __nv_bfloat16*>(in), in_stride, conv_state, slot_stride, w, bias, T, C,
                        K, seqs, s, bf16);
  else
    conv_prefill_launch(out, static_cast<const float*>(in), in_stride, conv_state, slot_stride, w, bias, T, C, K, seqs,
                        s, bf16);
}

void conv1d_silu_decode(float* out, const float* in, int64_t in_stride, float* conv_state, int64_t slot_stride,
                        const float* w, const float* bias, const int32_t* slots, int64_t Bn, int64_t C, int64_t K,
                        cudaStream_t s) {
  PCM_CHECK(K >= 1 && K <= kMaxK, "conv kernel size {} not supported by the CUDA backend (1..{})", K, kMaxK);
  if (Bn == 0) return;
  const bool aligned = reinterpret_cast<uintptr_t>(conv_state) % 16 == 0 && reinterpret_cast<uintptr_t>(w) % 16 == 0;
  if (K == 4 && slot_stride % 4 == 0 && aligned) {
    PCM_CUDA(launch_pdl(conv_decode4_kernel, dim3(blocks_for(Bn * C, 256)), dim3(256), 0, s, out, in, in_stride,
                        conv_state, slot_stride, reinterpret_cast<const float4*>(w), bias, slots, Bn, C));
    return;
  }
  PCM_CUDA(launch_pdl(conv_decode_kernel, dim3(blocks_for(Bn * C, 256)), dim3(256), 0, s, out, in, in_stride,
                      conv_state, slot_stride, w, bias, slots, Bn, C, static_cast<int>(K)));
}

}  // namespace pcm::cuda
