// Causal depthwise conv1d + SiLU: packed prefill (each sequence continuing from its conv window) and the
// decode step (rolling window, one token per slot).
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/ops.h"

namespace pcm::cuda {
namespace {

constexpr int kMaxK = 8;

// Block row per token (blockIdx.y), threads over channels: coalesced reads, no 64-bit division.
__global__ void conv_prefill_kernel(float* out, const float* in, int64_t in_stride, const float* conv_state,
                                    int64_t slot_stride, const float* w, const float* bias, int64_t C, int K,
                                    PackedSeqs seqs) {
  const int64_t t = blockIdx.y;
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const int sq = seqs.row_seq[t];
  const int64_t local = t - seqs.seq_start[sq];
  const float* win = conv_state + seqs.seq_slot[sq] * slot_stride + static_cast<int64_t>(c) * K;
  float acc = bias[c];
  for (int k = 0; k < K; ++k) {
    const int64_t j = local - (K - 1) + k;  // position inside this call's rows of the sequence
    const float v = j >= 0 ? in[(t - (K - 1) + k) * in_stride + c] : win[K + j];
    acc += w[static_cast<int64_t>(c) * K + k] * v;
  }
  out[t * C + c] = silu_f(acc);
}

// After the conv: each window takes its sequence's last K inputs (older window entries when shorter).
// One thread per (sequence, channel) walks k upwards, so it reads win[len + k] before overwriting it.
__global__ void conv_window_kernel(const float* in, int64_t in_stride, float* conv_state, int64_t slot_stride,
                                   int64_t C, int K, PackedSeqs seqs) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= static_cast<int64_t>(seqs.count) * C) return;
  const int sq = static_cast<int>(i / C);
  const int64_t c = i % C, begin = seqs.seq_start[sq], len = seqs.seq_start[sq + 1] - begin;
  float* win = conv_state + seqs.seq_slot[sq] * slot_stride + c * K;
  for (int k = 0; k < K; ++k) {
    const int64_t j = len - K + k;
    win[k] = j >= 0 ? in[(begin + j) * in_stride + c] : win[len + k];
  }
}

__global__ void conv_decode_kernel(float* out, const float* in, int64_t in_stride, float* conv_state,
                                   int64_t slot_stride, const float* w, const float* bias, const int32_t* slots,
                                   int64_t Bn, int64_t C, int K) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= Bn * C) return;
  const int64_t b = i / C, c = i % C;
  const int slot = slots[b];
  if (slot < 0) {
    out[i] = 0.0f;
    return;
  }
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

}  // namespace

void conv1d_silu_prefill(float* out, const float* in, int64_t in_stride, float* conv_state, int64_t slot_stride,
                         const float* w, const float* bias, int64_t T, int64_t C, int64_t K, const PackedSeqs& seqs,
                         cudaStream_t s) {
  PCM_CHECK(K >= 1 && K <= kMaxK, "conv kernel size {} not supported by the CUDA backend (1..{})", K, kMaxK);
  if (T == 0) return;
  conv_prefill_kernel<<<dim3(blocks_for(C, 256), static_cast<unsigned>(T)), 256, 0, s>>>(
      out, in, in_stride, conv_state, slot_stride, w, bias, C, static_cast<int>(K), seqs);
  PCM_CUDA_LAUNCH();
  conv_window_kernel<<<blocks_for(seqs.count * C, 256), 256, 0, s>>>(in, in_stride, conv_state, slot_stride, C,
                                                                     static_cast<int>(K), seqs);
  PCM_CUDA_LAUNCH();
}

void conv1d_silu_decode(float* out, const float* in, int64_t in_stride, float* conv_state, int64_t slot_stride,
                        const float* w, const float* bias, const int32_t* slots, int64_t Bn, int64_t C, int64_t K,
                        cudaStream_t s) {
  PCM_CHECK(K >= 1 && K <= kMaxK, "conv kernel size {} not supported by the CUDA backend (1..{})", K, kMaxK);
  if (Bn == 0) return;
  conv_decode_kernel<<<blocks_for(Bn * C, 256), 256, 0, s>>>(out, in, in_stride, conv_state, slot_stride, w, bias,
                                                             slots, Bn, C, static_cast<int>(K));
  PCM_CUDA_LAUNCH();
}

}  // namespace pcm::cuda
