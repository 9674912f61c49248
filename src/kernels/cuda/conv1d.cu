// Causal depthwise conv1d + SiLU: packed prefill (each sequence continuing from its conv window) and the
// decode step (one token per slot). Windows are rings (conv_ring.cuh).
#include <cuda_bf16.h>

#include <type_traits>

#include "kernels/cuda/conv_ring.cuh"
#include "kernels/cuda/cp_async.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/ops.h"

namespace pcm::cuda {
namespace {

// Sequence sq's position mod K at its first row in this call.
__device__ __forceinline__ int first_pos(const PackedSeqs& seqs, int sq) {
  return seqs.seq_pos ? seqs.seq_pos[sq] : 0;
}

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
  float wk[kConvMaxK];
#pragma unroll
  for (int k = 0; k < kConvMaxK; ++k) wk[k] = k < K ? w[c * K + k] : 0.0f;
  const float b = bias[c];
  float hist[kConvMaxK - 1 + kRun];  // hist[q] = input row t0 - (K - 1) + q
#pragma unroll
  for (int q = 0; q < kConvMaxK - 1 + kRun; ++q) {
    const int64_t t = t0 - (K - 1) + q;
    hist[q] = (q < K - 1 + kRun && t >= 0 && t < T) ? to_float(in[t * in_stride + c]) : 0.0f;
  }
#pragma unroll
  for (int r = 0; r < kRun; ++r) {
    const int64_t t = t0 + r;
    if (t >= T) break;
    const int sq = seqs.row_seq[t];
    const int64_t local = t - seqs.seq_start[sq];
    const float* win = conv_state + seqs.seq_slot[sq] * slot_stride + c;
    const int pos = first_pos(seqs, sq);
    float acc = b;
#pragma unroll
    for (int k = 0; k < kConvMaxK; ++k) {
      if (k < K) {
        const int64_t j = local - (K - 1) + k;  // position inside this call's rows of the sequence
        acc += wk[k] * (j >= 0 ? hist[r + k] : win[conv_ring_row(pos, static_cast<int>(j), K) * C]);
      }
    }
    const float v = silu_f(acc);
    if (bf16_out && c < bf16_cols) bf16_out[t * bf16_cols + c] = __float2bfloat16_rn(v);
    if (c >= fp32_from) out[t * C + c] = v;
  }
}

// K = 4 with 16-byte aligned rows: thread per (16 bytes of input channels: 4 fp32 or 8 bf16, run of kStageRows
// rows). Each thread copies its own column of the run's kStageRows + 3 input rows into shared memory with cp.async
// (only it reads them back: no barrier), then computes the rows from a sliding window in registers, the weights in
// registers too: all of a run's 16-byte loads are in flight at once, where a register window held 11 (bf16 input:
// 395 µs per layer of the codestral-7b prefill at T=16384, 41% of HBM bandwidth, 4 blocks of 128 per SM at 119
// registers; weights re-read per row: 888 µs, L1-bound; the row loop unrolled 32 times: 1.5 ms, warps stalled on
// instruction fetch; H200 2026-12-04). Runs of 16 rows: 38 KB of stage, 5 blocks per SM (94 registers for bf16);
// 32 rows (70 KB, 3 blocks) took 595 against 393 µs per layer (with the 2048-row warm-up). Blocks along x cover a
// row's channels, so the blocks running together read whole rows. A run inside one sequence, past its first K - 1
// rows, needs no window.
constexpr int kStageThreads = 128, kStageRows = 16;
constexpr int kStageIn = kStageRows + 3;  // input rows per run
constexpr size_t kStageSmem = size_t{kStageIn} * kStageThreads * 16;  // at the widest word (16 bytes)
static_assert(kStageSmem <= 48 * 1024, "the stage fits the default dynamic shared memory (no opt-in)");

// Channel i of an input word of 16 bytes (uint4: 4 fp32 or 8 bf16) or 8 bytes (uint2: 4 bf16); bf16 i at bits
// 16 (i % 2) of 32-bit word i / 2.
template <class In, class Word>
__device__ __forceinline__ float lane_of(const Word& u, int i) {
  uint32_t w[4];
  if constexpr (sizeof(Word) == 16) {
    w[0] = u.x, w[1] = u.y, w[2] = u.z, w[3] = u.w;
  } else {
    w[0] = u.x, w[1] = u.y, w[2] = w[3] = 0;
  }
  if constexpr (sizeof(In) == 4) return __uint_as_float(w[i]);
  else return i % 2 ? bf16_hi(w[i / 2]) : bf16_lo(w[i / 2]);
}

// V channels per thread: 4 fp32 or 8 bf16 (16-byte words), or 4 bf16 (8-byte words: as many threads per row as
// fp32 input, see conv_prefill_launch).
template <class In, int V>
__global__ void __launch_bounds__(kStageThreads) conv_prefill_staged_kernel(
    float* out, const In* in, int64_t in_stride, const float* conv_state, int64_t slot_stride, const float4* w,
    const float* bias, int64_t T, int64_t C, PackedSeqs seqs, __nv_bfloat16* bf16_out, int64_t bf16_cols,
    int64_t fp32_from) {
  using Word = std::conditional_t<V * sizeof(In) == 16, uint4, uint2>;
  extern __shared__ uint4 stage16[];  // [kStageIn][kStageThreads] words: row q = input row t0 - 3 + q
  Word* stage = reinterpret_cast<Word*>(stage16);
  const int64_t c0 = (static_cast<int64_t>(blockIdx.x) * kStageThreads + threadIdx.x) * V;
  const int64_t t0 = static_cast<int64_t>(blockIdx.y) * kStageRows;
  if (c0 >= C) return;
  Word* col = stage + threadIdx.x;
#pragma unroll
  for (int q = 0; q < kStageIn; ++q) {
    const int64_t t = t0 - 3 + q;
    const bool valid = t >= 0 && t < T;
    auto* dst = reinterpret_cast<float*>(col + q * kStageThreads);
    auto* src = reinterpret_cast<const float*>(in + (valid ? t : 0) * in_stride + c0);
    if constexpr (sizeof(Word) == 16)
      cp_async::copy16(dst, src, valid);
    else
      cp_async::copy8(dst, src, valid);
  }
  cp_async::commit();
  float4 wc[V];  // taps of channel c0 + i
  float bc[V];
#pragma unroll
  for (int i = 0; i < V; ++i) {
    wc[i] = w[c0 + i];
    bc[i] = bias[c0 + i];
  }
  const int64_t t_last = min(t0 + kStageRows, T) - 1;
  const int sq0 = seqs.row_seq[t0];
  const bool inside = seqs.row_seq[t_last] == sq0 && t0 - seqs.seq_start[sq0] >= 3;
  cp_async::wait_group<0>();
  Word x0 = col[0], x1 = col[kStageThreads], x2 = col[2 * kStageThreads];  // rows t - 3, t - 2, t - 1 of row t
  const int rows = static_cast<int>(min(static_cast<int64_t>(kStageRows), T - t0));
#pragma unroll 1  // one copy of the row body: unrolled 32 times, instruction fetch stalled the warps (1.5 ms)
  for (int r = 0; r < rows; ++r) {
    const Word x3 = col[(r + 3) * kStageThreads];
    const int64_t t = t0 + r;
    // rows before the sequence's first row in this call come from its window (a ring of 4 rows of C channels)
    int64_t local = 3;
    const float* win = nullptr;
    int pos = 0;
    if (!inside) {
      const int sq = seqs.row_seq[t];
      local = t - seqs.seq_start[sq];
      win = conv_state + seqs.seq_slot[sq] * slot_stride + c0;
      pos = first_pos(seqs, sq);
    }
    float v[V];
#pragma unroll
    for (int i = 0; i < V; ++i) {
      float x[4] = {lane_of<In, Word>(x0, i), lane_of<In, Word>(x1, i), lane_of<In, Word>(x2, i),
                    lane_of<In, Word>(x3, i)};
      if (local < 3) {
#pragma unroll
        for (int k = 0; k < 3; ++k)
          if (local - 3 + k < 0) x[k] = win[conv_ring_row(pos, static_cast<int>(local) - 3 + k, 4) * C + i];
      }
      v[i] = silu_f(bc[i] + wc[i].x * x[0] + wc[i].y * x[1] + wc[i].z * x[2] + wc[i].w * x[3]);
    }
    x0 = x1;
    x1 = x2;
    x2 = x3;
    if (bf16_out && c0 < bf16_cols) {
      uint32_t packed[V / 2];
#pragma unroll
      for (int i = 0; i < V / 2; ++i) packed[i] = pack_bf16x2(v[2 * i], v[2 * i + 1]);
      if constexpr (V == 8)
        *reinterpret_cast<uint4*>(bf16_out + t * bf16_cols + c0) =
            make_uint4(packed[0], packed[1], packed[2], packed[3]);
      else
        *reinterpret_cast<uint2*>(bf16_out + t * bf16_cols + c0) = make_uint2(packed[0], packed[1]);
    }
    if (c0 >= fp32_from) {
#pragma unroll
      for (int i = 0; i < V; i += 4)
        *reinterpret_cast<float4*>(out + t * C + c0 + i) = make_float4(v[i], v[i + 1], v[i + 2], v[i + 3]);
    }
  }
}

// After the conv: each window takes its sequence's last K inputs, each in its position's row (a sequence of fewer
// than K rows keeps the older rows). One thread per (sequence, channel).
template <class In>
__global__ void conv_window_kernel(const In* in, int64_t in_stride, float* conv_state, int64_t slot_stride,
                                   int64_t C, int K, PackedSeqs seqs) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= static_cast<int64_t>(seqs.count) * C) return;
  const int sq = static_cast<int>(i / C);
  const int64_t c = i % C, begin = seqs.seq_start[sq], len = seqs.seq_start[sq + 1] - begin;
  float* win = conv_state + seqs.seq_slot[sq] * slot_stride + c;
  const int64_t pos = first_pos(seqs, sq);
  for (int64_t j = len > K ? len - K : 0; j < len; ++j)
    win[(pos + j) % K * C] = to_float(in[(begin + j) * in_stride + c]);
}

// Decode thread i works on row b, channels [c, c + V) (channels fastest); false for threads past the end.
template <int V>
__device__ bool decode_lane(int64_t i, int64_t Bn, int64_t C, int64_t& b, int64_t& c) {
  const int64_t lanes_per_row = C / V;
  if (i >= Bn * lanes_per_row) return false;
  b = i / lanes_per_row;
  c = (i % lanes_per_row) * V;
  return true;
}

// Both decode kernels: rows without a sequence (slot < 0) get zero outputs and keep their windows. Slot and position
// are constant during a step: loaded before the wait (the K = 4 kernel also its taps and ring rows, so after the wait
// only x is a round trip).

// Thread per (row b, channel c): a warp reads and writes 128 contiguous bytes of each ring row.
__global__ void conv_decode_kernel(float* out, const float* in, int64_t in_stride, float* conv_state,
                                   int64_t slot_stride, const float* w, const float* bias, const int32_t* slots,
                                   const int32_t* pos, int64_t Bn, int64_t C, int K) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  int64_t b = 0, c = 0;
  const bool live = decode_lane<1>(i, Bn, C, b, c);
  const int slot = live ? slots[b] : -1, p = live ? pos[b] : 0;
  pdl_wait();  // launched with programmatic dependent launch: in_proj's output
  pdl_trigger();  // the SSD step after this starts bringing in its state tiles while this kernel runs
  if (!live) return;
  if (slot < 0) {
    out[i] = 0.0f;
    return;
  }
  float* win = conv_state + slot * slot_stride + c;
  const float x = in[b * in_stride + c];
  out[i] = silu_f(conv_ring_sum(win, C, p, w + c * K, bias[c], x, K));
  win[p * C] = x;
}

// K = 4, 16-byte aligned rows: thread per (row b, 4 channels): three 16-byte tap loads and one 16-byte store of the
// ring, the input and output as float4 too. The ring rows are read before the wait as well: during a step only this
// kernel writes this layer's windows, and the kernel before it (in_proj's product, or its bias add) writes none of
// them (as the SSD step reads its state tiles early).
__global__ void conv_decode4_kernel(float* out, const float* in, int64_t in_stride, float* conv_state,
                                    int64_t slot_stride, const float4* w, const float* bias, const int32_t* slots,
                                    const int32_t* pos, int64_t Bn, int64_t C) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  int64_t b = 0, c = 0;
  const bool live = decode_lane<4>(i, Bn, C, b, c);
  const int slot = live ? slots[b] : -1, p = live ? pos[b] : 0;
  float4 w0{}, w1{}, w2{}, w3{}, bs{}, t0{}, t1{}, t2{};
  float* win = conv_state + max(slot, 0) * slot_stride + c;
  if (slot >= 0) {
    w0 = w[c], w1 = w[c + 1], w2 = w[c + 2], w3 = w[c + 3];
    bs = make_float4(bias[c], bias[c + 1], bias[c + 2], bias[c + 3]);
    t0 = *reinterpret_cast<const float4*>(win + conv_ring_row(p, 1, 4) * C);  // position p - 3
    t1 = *reinterpret_cast<const float4*>(win + conv_ring_row(p, 2, 4) * C);
    t2 = *reinterpret_cast<const float4*>(win + conv_ring_row(p, 3, 4) * C);
  }
  pdl_wait();
  pdl_trigger();
  if (!live) return;
  float4* o = reinterpret_cast<float4*>(out + b * C + c);
  if (slot < 0) {
    *o = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    return;
  }
  const float4 x = *reinterpret_cast<const float4*>(in + b * in_stride + c);
  *reinterpret_cast<float4*>(win + p * C) = x;
  *o = make_float4(silu_f(bs.x + w0.x * t0.x + w0.y * t1.x + w0.z * t2.x + w0.w * x.x),
                   silu_f(bs.y + w1.x * t0.y + w1.y * t1.y + w1.z * t2.y + w1.w * x.y),
                   silu_f(bs.z + w2.x * t0.z + w2.y * t1.z + w2.z * t2.z + w2.w * x.z),
                   silu_f(bs.w + w3.x * t0.w + w3.y * t1.w + w3.z * t2.w + w3.w * x.w));
}

}  // namespace

namespace {
template <class In>
void conv_prefill_launch(float* out, const In* in, int64_t in_stride, float* conv_state, int64_t slot_stride,
                         const float* w, const float* bias, int64_t T, int64_t C, int64_t K, const PackedSeqs& seqs,
                         cudaStream_t s, const ConvBf16& bf16) {
  const int64_t bf16_cols = bf16.out ? bf16.cols : 0, fp32_from = bf16.out ? bf16.fp32_from : 0;
  // Channels per thread of the staged kernel: 16-byte input words (4 fp32 or 8 bf16), or for bf16 input with an fp32
  // output of every column (the training's conv) 8-byte words of 4 bf16, as many threads per row as fp32 input has
  // (H100, 1.3B 4 x 2048: the training's conv + dt forward 7.35 -> 6.00 ms a step; bench/cuda_notes.md).
  const bool narrow = sizeof(In) == 2 && fp32_from == 0;
  const int64_t V = narrow ? 4 : 16 / sizeof(In);
  const bool copy_v = !bf16.out || (bf16_cols % V == 0 && fp32_from % V == 0 && aligned(bf16.out, 2 * V));
  if (K == 4 && C % V == 0 && in_stride % V == 0 && aligned(out, 16) && aligned(in, 16) && aligned(w, 16) &&
      copy_v) {
    auto launch = [&](auto channels) {  // the stage holds one input word of `channels` values per thread and row
      constexpr int Vc = decltype(channels)::value;
      conv_prefill_staged_kernel<In, Vc><<<dim3(blocks_for(C / Vc, kStageThreads), blocks_for(T, kStageRows)),
                                           kStageThreads, size_t{kStageIn} * kStageThreads * Vc * sizeof(In), s>>>(
          out, in, in_stride, conv_state, slot_stride, reinterpret_cast<const float4*>(w), bias, T, C, seqs,
          static_cast<__nv_bfloat16*>(bf16.out), bf16_cols, fp32_from);
    };
    if (narrow)
      launch(std::integral_constant<int, 4>{});
    else
      launch(std::integral_constant<int, 16 / sizeof(In)>{});
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
                         cudaStream_t s, const ConvBf16& bf16) {
  PCM_CHECK(K >= 1 && K <= kConvMaxK, "conv kernel size {} not supported by the CUDA backend (1..{})", K, kConvMaxK);
  PCM_CHECK(!bf16.out || (bf16.cols > 0 && bf16.cols <= C && bf16.fp32_from >= 0 && bf16.fp32_from <= bf16.cols),
            "conv: bf16 output of {} of {} columns, fp32 from column {}", bf16.cols, C, bf16.fp32_from);
  if (T == 0) return;
  with_input_type(in, bf16.in_bf16, [&](auto* typed_in) {
    conv_prefill_launch(out, typed_in, in_stride, conv_state, slot_stride, w, bias, T, C, K, seqs, s, bf16);
  });
}

void conv1d_silu_decode(float* out, const float* in, int64_t in_stride, float* conv_state, int64_t slot_stride,
                        const float* w, const float* bias, const int32_t* slots, const int32_t* pos, int64_t Bn,
                        int64_t C, int64_t K, cudaStream_t s) {
  PCM_CHECK(K >= 1 && K <= kConvMaxK, "conv kernel size {} not supported by the CUDA backend (1..{})", K, kConvMaxK);
  if (Bn == 0) return;
  if (K == 4 && C % 4 == 0 && in_stride % 4 == 0 && slot_stride % 4 == 0 && aligned(out, 16) && aligned(in, 16) &&
      aligned(conv_state, 16) && aligned(w, 16)) {
    PCM_CUDA(launch_pdl(conv_decode4_kernel, dim3(blocks_for(Bn * C / 4, 256)), dim3(256), 0, s, out, in, in_stride,
                        conv_state, slot_stride, reinterpret_cast<const float4*>(w), bias, slots, pos, Bn, C));
    return;
  }
  PCM_CUDA(launch_pdl(conv_decode_kernel, dim3(blocks_for(Bn * C, 256)), dim3(256), 0, s, out, in, in_stride,
                      conv_state, slot_stride, w, bias, slots, pos, Bn, C, static_cast<int>(K)));
}

}  // namespace pcm::cuda
