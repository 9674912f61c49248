// Chunk states of the SSD prefill on the bf16 tensor cores (mma.sync m16n8k16, fp32 accumulation) for bf16 models:
// local(c)[p, n] = Σ_j x[j, p] w_j B[j, n], w_j = exp(cs_last - cs_j) dt_j, then the state pass folded in as the TF32
// kernel does (state_pass::hand_on). x and B arrive in bf16 (the conv's copies), so their slabs go into shared memory
// by cp.async as they are and every fragment comes out of ldmatrix.trans; w_j scales the A fragments in registers
// (Triton's chunk_state rounds w_j B_j to bf16 instead). 49 KB of shared memory against the TF32 kernel's 81.
// One block of 8 warps per (chunk, head); warp w owns rows p in [16 (w % 4), +16) and columns n in [64 (w / 4), +64).
#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/cuda/cp_async.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/mma_bf16.cuh"
#include "kernels/cuda/mma_tf32.cuh"
#include "kernels/cuda/ssd_chunk_terms.cuh"
#include "kernels/cuda/ssd_prefill_tc.h"
#include "kernels/cuda/ssd_state_pass.cuh"

namespace pcm::cuda::tc {
namespace {

constexpr int kP = 64, kN = 128, kQmax = 256, kThreads = 256, kSlab = 64;

// Rows of 16-byte pieces; piece q of row j at q ^ (j % 8) (the low three bits): the 8 consecutive rows of one
// ldmatrix matrix then sit in 8 different bank groups.
struct StateSmem {
  uint16_t x[2][kSlab * kP];  // bf16 x[j][p]
  uint16_t b[2][kSlab * kN];  // bf16 B[j][n]
  float w[kQmax];
};
__device__ __forceinline__ int at(int j, int row_len, int piece) { return j * row_len + 8 * (piece ^ (j & 7)); }

using mma_bf16::ldmatrix_x4_trans;
using mma_bf16::mma;

// A bf16 pair (lower k in the low half) times (w.x, w.y), rounded back to a bf16 pair.
__device__ __forceinline__ uint32_t scale_pair(uint32_t v, float2 w) {
  return pack_bf16x2(bf16_lo(v) * w.x, bf16_hi(v) * w.y);
}

__global__ void __launch_bounds__(kThreads, 3) chunk_states_bf16_kernel(float* states, const float* cs, SsdIn in,
                                                                        SsdDims d, ChunkTable ct, StatePass ps) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  StateSmem& sm = *reinterpret_cast<StateSmem*>(smem_raw);
  const int blk = state_pass::ticket(ps.sync + static_cast<int64_t>(ct.count) * d.H);  // chunk-major
  const int c = blk / d.H, h = blk % d.H, g = h / (d.H / d.G);
  const int start = ct.chunk_start[c], len = ct.chunk_len[c];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gq = lane >> 2, tq = lane & 3;
  const int64_t ld = in.bf16_stride;
  const uint16_t* xbc16 = static_cast<const uint16_t*>(in.xbc_bf16);  // x, B, C as in xbc
  const uint16_t* xg = xbc16 + static_cast<int64_t>(h) * kP;
  const uint16_t* bg = xbc16 + static_cast<int64_t>(d.H) * kP + static_cast<int64_t>(g) * kN;
  const int slabs = (len + kSlab - 1) / kSlab;
  auto issue = [&](int s) {  // one commit group per call (empty past the last slab) keeps the wait counts fixed
    if (s < slabs) {
      const int buf = s & 1;
      for (int e = tid; e < kSlab * (kP / 8); e += kThreads) {
        const int r = e / (kP / 8), q = e % (kP / 8), j = s * kSlab + r;
        const bool ok = j < len;
        cp_async::copy16(reinterpret_cast<float*>(&sm.x[buf][at(r, kP, q)]),
                         reinterpret_cast<const float*>(xg + (start + (ok ? j : 0)) * ld + 8 * q), ok);
      }
      for (int e = tid; e < kSlab * (kN / 8); e += kThreads) {
        const int r = e / (kN / 8), q = e % (kN / 8), j = s * kSlab + r;
        const bool ok = j < len;
        cp_async::copy16(reinterpret_cast<float*>(&sm.b[buf][at(r, kN, q)]),
                         reinterpret_cast<const float*>(bg + (start + (ok ? j : 0)) * ld + 8 * q), ok);
      }
    }
    cp_async::commit();
  };
  issue(0);
  const float cs_last = state_weights(sm.w, cs + (static_cast<int64_t>(c) * d.H + h) * ct.Q,
                                      in.dt + static_cast<int64_t>(start) * d.H + h, d.H, len, slabs * kSlab, tid,
                                      kThreads);
  const int m0 = 16 * (warp & 3), n0 = 64 * (warp >> 2);
  // This lane's ldmatrix row: matrix lm = lane / 8, row lane % 8. A (x as [k = j][m = p]): matrices (k half lm / 2,
  // m half lm % 2) give a0..a3; B ([k = j][n]): matrices (k half lm % 2, n-tile lm / 2) give b0, b1 of two n-tiles.
  const int lm = lane >> 3, lr = lane & 7;
  const int a_row = 8 * (lm >> 1) + lr, a_piece = (m0 >> 3) + (lm & 1);
  const int b_row = 8 * (lm & 1) + lr, b_piece = (n0 >> 3) + (lm >> 1);
  float acc[8][4] = {};
  for (int s = 0; s < slabs; ++s) {
    cp_async::wait_group<0>();  // slab s (this thread's copies)
    __syncthreads();            // slab s and w visible to all; every warp is done with slab s - 1's buffer
    issue(s + 1);
    const int buf = s & 1;
    const float* ws = sm.w + s * kSlab;
#pragma unroll 2
    for (int k0 = 0; k0 < kSlab; k0 += 16) {
      uint32_t a[4];
      ldmatrix_x4_trans(a, &sm.x[buf][at(k0 + a_row, kP, a_piece)]);
      const float2 wlo = *reinterpret_cast<const float2*>(ws + k0 + 2 * tq);  // k 2t, 2t+1: a0, a1
      const float2 whi = *reinterpret_cast<const float2*>(ws + k0 + 8 + 2 * tq);  // k 2t+8, 2t+9: a2, a3
      a[0] = scale_pair(a[0], wlo);
      a[1] = scale_pair(a[1], wlo);
      a[2] = scale_pair(a[2], whi);
      a[3] = scale_pair(a[3], whi);
#pragma unroll
      for (int np = 0; np < 4; ++np) {  // n-tiles 2 np, 2 np + 1
        uint32_t b[4];
        ldmatrix_x4_trans(b, &sm.b[buf][at(k0 + b_row, kN, b_piece + 2 * np)]);
        mma(acc[2 * np], a, b[0], b[1]);
        mma(acc[2 * np + 1], a, b[2], b[3]);
      }
    }
  }
  state_pass::hand_on(acc, states, ps, ct, d.H, c, h, __expf(cs_last), m0, n0, gq, tq);
}

}  // namespace

void chunk_states_bf16(float* states, const float* cs, const SsdIn& in, const SsdDims& d, const ChunkTable& ct,
                       const StatePass& pass, cudaStream_t s) {
  PCM_CHECK(pass.sync && pass.seqs > 0 && (pass.slot || !pass.keep_final),
            "SSD chunk states (bf16): the state pass needs its flags, the sequences and (keep_final) a slot state");
  constexpr int smem = sizeof(StateSmem);
  mma_tf32::allow_smem(chunk_states_bf16_kernel, smem);
  const unsigned blocks = static_cast<unsigned>(ct.count) * d.H;
  chunk_states_bf16_kernel<<<blocks, kThreads, smem, s>>>(states, cs, in, d, ct, pass);
  PCM_CUDA_LAUNCH();
}

}  // namespace pcm::cuda::tc
