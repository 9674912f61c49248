// Per-chunk terms that the SSD prefill's tensor-core kernels of both precisions compute alike (ssd_prefill_tc.cu:
// TF32; ssd_states_bf16.cu, ssd_output_bf16.cu: bf16), so that they round only their mma operands differently.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace pcm::cuda::tc {

// The chunk states' row weights w[j] = exp(cs_last - cs_j) dt_j for j < len, 0 up to `rows` (block-wide: thread tid
// of `threads`); returns cs_last. csc: the chunk's running sums of dt·A; dt_h: dt of the chunk's first row, head h
// (row stride H).
__device__ __forceinline__ float state_weights(float* w, const float* csc, const float* dt_h, int64_t H, int len,
                                               int rows, int tid, int threads) {
  const float cs_last = csc[len - 1];
  for (int j = tid; j < rows; j += threads) w[j] = j < len ? __expf(cs_last - csc[j]) * dt_h[j * H] : 0.0f;
  return cs_last;
}

// The chunk outputs' intra-chunk A operand for a lane's rows r0 = 16 mt + g and r1 = r0 + 8 (g = lane / 4, t = lane % 4)
// at j = jb + u (jb = 16 kb + 4t, u = 0..3): L[i, j] = CB[i, j] exp(cs_i - cs_j) dt_j, 0 for j > i (masked by
// selection: exp of a positive exponent may overflow). cb0, cb1: CB[r0 or r1, jb..jb+3]; cs, dt: the chunk's values in
// shared memory (0 past len); cs0, cs1 = cs[r0], cs[r1].
__device__ __forceinline__ void decayed_cb(const float4& cb0, const float4& cb1, const float* cs, const float* dt, int jb,
                                           int r0, float cs0, float cs1, float (&e0)[4], float (&e1)[4]) {
  const float4 csj = *reinterpret_cast<const float4*>(cs + jb);
  const float4 dtj = *reinterpret_cast<const float4*>(dt + jb);
  const float cj[4] = {csj.x, csj.y, csj.z, csj.w}, dj[4] = {dtj.x, dtj.y, dtj.z, dtj.w};
  const float q0[4] = {cb0.x, cb0.y, cb0.z, cb0.w}, q1[4] = {cb1.x, cb1.y, cb1.z, cb1.w};
#pragma unroll
  for (int u = 0; u < 4; ++u) {
    e0[u] = jb + u <= r0 ? q0[u] * __expf(cs0 - cj[u]) * dj[u] : 0.0f;
    e1[u] = jb + u <= r0 + 8 ? q1[u] * __expf(cs1 - cj[u]) * dj[u] : 0.0f;
  }
}

// The chunk outputs' inter-chunk term of a lane's rows r0 and r0 + 8 times exp(cs) of those rows (acc: 8 n-tiles).
__device__ __forceinline__ void scale_rows(float (&acc)[8][4], float e0, float e1) {
#pragma unroll
  for (int nt = 0; nt < 8; ++nt) {
    acc[nt][0] *= e0;
    acc[nt][1] *= e0;
    acc[nt][2] *= e1;
    acc[nt][3] *= e1;
  }
}

}  // namespace pcm::cuda::tc
