// Device side of the SSD state pass folded into the tensor-core chunk states (ssd_prefill_tc.cu): the block of
// (chunk c, head h) waits for the state entering chunk c, published by chunk c - 1's block of the same head, and
// publishes the state leaving it. Why: the separate pass read the local states back and wrote the entering
// states (2 x 268 MB per Codestral layer at T = 16384) in a serial chain per thread (bench/cuda_notes.md, ssdpass).
// Forward progress: each block takes its logical index from a ticket, so it only ever waits on a block that took
// an earlier ticket, i.e. one that is running or done. The flags and the ticket counter are zeroed by the
// launch before (cumsum_kernel), so the handoff needs no memset of its own.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/ssd_prefill_tc.h"

namespace pcm::cuda::state_pass {

__device__ __forceinline__ unsigned ld_acquire(const unsigned* p) {
  unsigned v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}
__device__ __forceinline__ void st_release(unsigned* p, unsigned v) {
  asm volatile("st.release.gpu.global.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}

// The block's logical index, in the order blocks start (every thread gets it).
__device__ __forceinline__ int ticket(unsigned* counter) {
  __shared__ int t;
  if (threadIdx.x == 0) t = static_cast<int>(atomicAdd(counter, 1u));
  __syncthreads();
  return t;
}

// The sequence that owns chunk c: the last s < seqs with seq_chunk[s] <= c (sequences without chunks skipped).
__device__ __forceinline__ int seq_of(const int32_t* seq_chunk, int seqs, int c) {
  int lo = 0, hi = seqs - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) >> 1;
    if (seq_chunk[mid] <= c) lo = mid; else hi = mid - 1;
  }
  return lo;
}

// Until *flag is set; afterwards the publisher's stores are visible to the whole block (read them with ld.cg:
// L1 is not coherent).
__device__ __forceinline__ void wait(const unsigned* flag) {
  if (threadIdx.x == 0)
    while (ld_acquire(flag) == 0) __nanosleep(32);
  __syncthreads();
}

// After every thread of the block stored its part: the barrier orders the block's stores before thread 0's
// release (cumulative), as CUTLASS's GenericBarrier does (no fence besides the release).
__device__ __forceinline__ void publish(unsigned* flag) {
  __syncthreads();
  if (threadIdx.x == 0) st_release(flag, 1u);
}

__device__ __forceinline__ float load_slot(const void* base, bool bf16, int64_t i) {
  return bf16 ? __bfloat162float(static_cast<const __nv_bfloat16*>(base)[i]) : static_cast<const float*>(base)[i];
}
__device__ __forceinline__ void store_slot(void* base, bool bf16, int64_t i, float v) {
  if (bf16)
    static_cast<__nv_bfloat16*>(base)[i] = __float2bfloat16(v);
  else
    static_cast<float*>(base)[i] = v;
}

// The end of the tc chunk-states kernels (ssd_prefill_tc.cu, ssd_states_bf16.cu; P = 64, N = 128, 8 warps of 16 rows x
// 64 columns): the state pass on the block's local state acc (thread's elements: rows m0 + gq (+ 8), columns n0 + 8 nt + 2 tq
// (+ 1)): S_c from chunk c - 1's block (or the slot / zeros at the sequence's first chunk), S_{c+1} = decay S_c + acc
// on to chunk c + 1's block (or the slot after the last chunk), S_c kept as chunk c's entering state. The same fp32
// operations in the same order as ssd.cu's state_pass_kernel.
__device__ __forceinline__ void hand_on(const float (&acc)[8][4], float* states, const tc::StatePass& ps,
                                        const ChunkTable& ct, int H, int c, int h, float decay, int m0, int n0, int gq,
                                        int tq) {
  constexpr int kP = 64, kN = 128;
  constexpr int64_t PN = kP * kN;
  const int sq = seq_of(ct.seq_chunk, ps.seqs, c);
  const bool first = c == ct.seq_chunk[sq], last = c + 1 == ct.seq_chunk[sq + 1];
  const int64_t slot = ps.slot ? (ps.seq_slot ? ps.seq_slot[sq] : sq) * ps.slot_stride + h * PN : 0;
  float* cur = states + (static_cast<int64_t>(c) * H + h) * PN;
  float* next = cur + H * PN;  // chunk c + 1, head h
  unsigned* flag = ps.sync + static_cast<int64_t>(c) * H + h;  // chunk c's; chunk c + 1's at + H
  if (!first) wait(flag);
  // All of S_c's loads first, then the stores: interleaved, each load waited behind the stores before it (cur and
  // next may alias for the compiler), 16 L2 round trips in a row per thread.
  float2 e[8][2];
  auto offset = [&](int nt, int half) { return (m0 + gq + 8 * half) * kN + n0 + 8 * nt + 2 * tq; };
  if (!first) {  // cur already holds S_c from chunk c - 1's block
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
      for (int half = 0; half < 2; ++half) e[nt][half] = __ldcg(reinterpret_cast<const float2*>(cur + offset(nt, half)));
  } else {
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int o = offset(nt, half);
        e[nt][half] = ps.slot ? make_float2(load_slot(ps.slot, ps.slot_bf16, slot + o),
                                            load_slot(ps.slot, ps.slot_bf16, slot + o + 1))
                              : make_float2(0.0f, 0.0f);
      }
  }
#pragma unroll
  for (int nt = 0; nt < 8; ++nt)
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int o = offset(nt, half);
      const float2 e2 = e[nt][half];
      if (first) *reinterpret_cast<float2*>(cur + o) = e2;
      const float2 v =
          make_float2(__fmaf_rn(decay, e2.x, acc[nt][2 * half]), __fmaf_rn(decay, e2.y, acc[nt][2 * half + 1]));
      if (!last) {
        *reinterpret_cast<float2*>(next + o) = v;
      } else if (ps.keep_final) {
        store_slot(ps.slot, ps.slot_bf16, slot + o, v.x);
        store_slot(ps.slot, ps.slot_bf16, slot + o + 1, v.y);
      }
    }
  if (!last) publish(flag + H);
}

}  // namespace pcm::cuda::state_pass
