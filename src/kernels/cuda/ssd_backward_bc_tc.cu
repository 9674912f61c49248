// dB and dC of the chunked SSD backward with mma.sync TF32 (m16n8k8, fp32 accumulation), one block of 8
// warps per (chunk, head), in the style of the prefill's chunk-output kernel (ssd_prefill_tc.cu on the
// prefill branch). The operands every warp needs (the group's B or C rows of the chunk, S0 or dS) are copied
// into shared memory once, rounded to TF32; the operands private to a warp's rows (dY or X, dCB) go from
// device memory straight into its fragments. Why: the 64x64 tile kernels re-read every operand per output
// tile and stage through 32-deep slabs between barriers; dB/dC were half of the backward (bench/cuda_notes.md).
#include "kernels/cuda/ssd_backward_bc_tc.h"

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/mma_tf32.cuh"

namespace pcm::cuda::bwd_tc {
namespace {

using namespace mma_tf32;

constexpr int kP = 64, kNmax = 128, kQmax = 256, kThreads = 256, kNtMax = kNmax / 8;

// Per block (chunk c, head h): shared rows[Q][sn] (B for dC, C for dB) and st[P][sn] (S0 or dS), TF32.
template <bool kIsC>
__global__ void __launch_bounds__(kThreads, 1) bc_kernel(BcArgs a, bool vin, bool vcb) {
  extern __shared__ __align__(16) float smem[];
  const int H = a.d.H, N = a.d.N, Q = a.ct.Q, sn = N + 2, nts = N / 8;
  const int c = blockIdx.x / H, h = blockIdx.x % H, g = h / (H / a.d.G);
  const int start = a.ct.chunk_start[c], len = a.ct.chunk_len[c], rows = (len + 15) & ~15;
  const int64_t chn = static_cast<int64_t>(c) * H + h, HP = static_cast<int64_t>(H) * kP;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gq = lane >> 2, tq = lane & 3;
  float* rs = smem;              // [Q][sn]
  float* st = smem + Q * sn;     // [P][sn]
  const float* rowg = a.xbc + static_cast<int64_t>(start) * a.ld + HP + static_cast<int64_t>((kIsC ? 0 : a.d.G) + g) * N;
  const float* stg = a.state + chn * kP * N;
  // Fill: 4 columns per item, loads of several items in flight before the stores.
  const int n4 = N / 4;
  for (int e0 = tid; e0 < (rows + kP) * n4; e0 += 4 * kThreads) {
    float4 v[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int e = e0 + u * kThreads, r = e / n4, col = 4 * (e % n4);
      v[u] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      if (r < rows) {
        if (r < len) v[u] = load4(rowg + static_cast<int64_t>(r) * a.ld + col, vin);
      } else if (r < rows + kP) {
        v[u] = load4(stg + static_cast<int64_t>(r - rows) * N + col, vin);
      }
    }
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int e = e0 + u * kThreads, r = e / n4, col = 4 * (e % n4);
      if (r < rows + kP) {
        float* p = (r < rows ? rs + r * sn : st + (r - rows) * sn) + col;  // sn even: 8-byte aligned pairs
        *reinterpret_cast<float2*>(p) = make_float2(round_tf32(v[u].x), round_tf32(v[u].y));
        *reinterpret_cast<float2*>(p + 2) = make_float2(round_tf32(v[u].z), round_tf32(v[u].w));
      }
    }
  }
  __syncthreads();
  const float* csc = a.cs + chn * Q;
  const float cs_last = csc[len - 1];
  const float* dcb = a.dcb + chn * Q * Q;
  // Warp w owns the 16-row tiles w and 15 - w (equal causal work per warp), all N columns.
  for (int pass = 0; pass < 2; ++pass) {
    const int mt = pass == 0 ? warp : 15 - warp;
    if (16 * mt >= len) continue;
    const int r0 = 16 * mt + gq, r1 = r0 + 8;
    const int q0 = min(r0, len - 1), q1 = min(r1, len - 1);  // clamped rows for loads
    float acc[kNtMax][4];
#pragma unroll
    for (int nt = 0; nt < kNtMax; ++nt) acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0.0f;
    // Stage 1: Σ_p A[r, p] St[p, :], A = dY (dC) or X (dB).
    const float* A0 = kIsC ? a.dy + static_cast<int64_t>(start + q0) * HP + static_cast<int64_t>(h) * kP
                           : a.xbc + static_cast<int64_t>(start + q0) * a.ld + static_cast<int64_t>(h) * kP;
    const float* A1 = kIsC ? a.dy + static_cast<int64_t>(start + q1) * HP + static_cast<int64_t>(h) * kP
                           : a.xbc + static_cast<int64_t>(start + q1) * a.ld + static_cast<int64_t>(h) * kP;
#pragma unroll
    for (int k0 = 0; k0 < kP; k0 += 16) {
      const float4 u0 = load4(A0 + k0 + 4 * tq, vin), u1 = load4(A1 + k0 + 4 * tq, vin);
      const uint32_t f0[4] = {to_tf32(u0.x), to_tf32(u0.y), to_tf32(u0.z), to_tf32(u0.w)};
      const uint32_t f1[4] = {to_tf32(u1.x), to_tf32(u1.y), to_tf32(u1.z), to_tf32(u1.w)};
      step16<kNtMax>(acc, f0, f1, st + (k0 + 4 * tq) * sn + gq, sn, nts);
    }
    // Row scale: e^cs_i (dC) or w_j (dB).
    float s0, s1;
    if constexpr (kIsC) {
      s0 = __expf(csc[q0]);
      s1 = __expf(csc[q1]);
    } else {
      s0 = __expf(cs_last - csc[q0]) * a.dt[static_cast<int64_t>(start + q0) * H + h];
      s1 = __expf(cs_last - csc[q1]) * a.dt[static_cast<int64_t>(start + q1) * H + h];
    }
#pragma unroll
    for (int nt = 0; nt < kNtMax; ++nt) {
      acc[nt][0] *= s0;
      acc[nt][1] *= s0;
      acc[nt][2] *= s1;
      acc[nt][3] *= s1;
    }
    if constexpr (kIsC) {  // inter_i = <e^cs_i dY_i S0, C_i> (fp32 C from device memory)
      const float* C0 = a.xbc + static_cast<int64_t>(start + q0) * a.ld + HP + static_cast<int64_t>(a.d.G + g) * N;
      const float* C1 = a.xbc + static_cast<int64_t>(start + q1) * a.ld + HP + static_cast<int64_t>(a.d.G + g) * N;
      float d0 = 0.0f, d1 = 0.0f;
#pragma unroll
      for (int nt = 0; nt < kNtMax; ++nt)
        if (nt < nts) {
          const int n = 8 * nt + 2 * tq;
          d0 += acc[nt][0] * __ldg(C0 + n) + acc[nt][1] * __ldg(C0 + n + 1);
          d1 += acc[nt][2] * __ldg(C1 + n) + acc[nt][3] * __ldg(C1 + n + 1);
        }
      d0 += __shfl_xor_sync(0xffffffffu, d0, 1);
      d0 += __shfl_xor_sync(0xffffffffu, d0, 2);
      d1 += __shfl_xor_sync(0xffffffffu, d1, 1);
      d1 += __shfl_xor_sync(0xffffffffu, d1, 2);
      if (tq == 0) {
        float* in0 = a.inter + chn * a.inter_slots * Q;
        for (int sl = 0; sl < a.inter_slots; ++sl) {
          if (r0 < len) in0[sl * Q + r0] = sl == 0 ? d0 : 0.0f;
          if (r1 < len) in0[sl * Q + r1] = sl == 0 ? d1 : 0.0f;
        }
      }
    }
    // Stage 2 (dC): Σ_{j <= i} dCB[i, j] B[j, :], k-steps 0..mt, A = rows r0, r1 of dCB (4 floats per lane).
    // Stage 2 (dB): Σ_{i >= j} dCB[i, j] C[i, :], k-steps mt..rows/16-1, A = columns r0, r1 of dCB.
    // Entries outside the causal part or past len are unwritten scratch: selected away, never multiplied.
    if constexpr (kIsC) {
      const float* g0 = dcb + static_cast<int64_t>(r0) * Q + 4 * tq;
      const float* g1 = dcb + static_cast<int64_t>(r1) * Q + 4 * tq;
      float4 v0 = load4(g0, vcb), v1 = load4(g1, vcb);
      for (int kb = 0; kb <= mt; ++kb) {
        const float4 w0 = v0, w1 = v1;
        if (kb < mt) {  // next step's dCB in flight during this one
          v0 = load4(g0 + 16 * (kb + 1), vcb);
          v1 = load4(g1 + 16 * (kb + 1), vcb);
        }
        const int jb = 16 * kb + 4 * tq;
        const float e0[4] = {w0.x, w0.y, w0.z, w0.w}, e1[4] = {w1.x, w1.y, w1.z, w1.w};
        uint32_t f0[4], f1[4];
#pragma unroll
        for (int u = 0; u < 4; ++u) {
          f0[u] = to_tf32(jb + u <= r0 && r0 < len ? e0[u] : 0.0f);
          f1[u] = to_tf32(jb + u <= r1 && r1 < len ? e1[u] : 0.0f);
        }
        step16<kNtMax>(acc, f0, f1, rs + jb * sn + gq, sn, nts);
      }
    } else {
      const int kend = rows / 16;
      float e0[4], e1[4];
      auto fetch = [&](int kb) {
#pragma unroll
        for (int u = 0; u < 4; ++u) {
          const int64_t i = 16 * kb + 4 * tq + u;
          e0[u] = __ldg(dcb + i * Q + r0);
          e1[u] = __ldg(dcb + i * Q + r1);
        }
      };
      fetch(mt);
      for (int kb = mt; kb < kend; ++kb) {
        const int ib = 16 * kb + 4 * tq;
        uint32_t f0[4], f1[4];
#pragma unroll
        for (int u = 0; u < 4; ++u) {
          const int i = ib + u;
          f0[u] = to_tf32(i >= r0 && i < len ? e0[u] : 0.0f);
          f1[u] = to_tf32(i >= r1 && i < len ? e1[u] : 0.0f);
        }
        if (kb + 1 < kend) fetch(kb + 1);  // in flight during this step's products
        step16<kNtMax>(acc, f0, f1, rs + ib * sn + gq, sn, nts);
      }
    }
    float* o0 = a.out + (static_cast<int64_t>(start + r0) * H + h) * N;
    float* o1 = a.out + (static_cast<int64_t>(start + r1) * H + h) * N;
#pragma unroll
    for (int nt = 0; nt < kNtMax; ++nt)
      if (nt < nts) {
        const int n = 8 * nt + 2 * tq;
        if (r0 < len) {
          o0[n] = acc[nt][0];
          o0[n + 1] = acc[nt][1];
        }
        if (r1 < len) {
          o1[n] = acc[nt][2];
          o1[n + 1] = acc[nt][3];
        }
      }
  }
}

}  // namespace

bool bc_supported(const SsdDims& d, int32_t Q) {
  return d.P == kP && d.N % 16 == 0 && d.N <= kNmax && Q % 16 == 0 && Q <= kQmax && Q >= 16;
}

void bc_product(const BcArgs& a, bool is_c, cudaStream_t s) {
  const int smem = (a.ct.Q + kP) * (a.d.N + 2) * static_cast<int>(sizeof(float));
  const bool vin = aligned16(a.xbc) && aligned16(a.dy) && a.ld % 4 == 0 && aligned16(a.state);
  const bool vcb = aligned16(a.dcb);
  const unsigned blocks = static_cast<unsigned>(a.ct.count) * a.d.H;
  auto kernel = is_c ? bc_kernel<true> : bc_kernel<false>;
  allow_smem(kernel, smem);
  kernel<<<blocks, kThreads, smem, s>>>(a, vin, vcb);
  PCM_CUDA_LAUNCH();
}

}  // namespace pcm::cuda::bwd_tc
