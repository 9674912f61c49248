// dB and dC of the chunked SSD backward per group with mma.sync TF32 (m16n8k8, fp32 accumulation). One block of 8 warps
// per (chunk and group, 64-row tile, 64-column tile of N, dB or dC); warp w owns 16 rows (w % 4) x 32 columns (w / 4).
// Why per group: B and C are shared by the group's heads, so
//   stage 1  Σ_h (scale_h ∘ A_h) St_h   one product with k = (head, p) of H / G x 64 (A = dY or X rows of head h
//            straight into fragments, scaled; St = S0 or dS, per head into shared memory, double buffered: the
//            next head's tile is loaded into registers while this one multiplies)
//   stage 2  (Σ_h dCB_h) B  or  (Σ_h dCB_h)ᵀ C   once per group, not once per head as before
// and the outputs go straight into dxbc: no per-head dB/dC partials (2 x T x H x N floats) and no group sum.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/mma_tf32.cuh"
#include "kernels/cuda/ssd_backward_bc_tc.h"

namespace pcm::cuda::bwd_tc {
namespace {

using namespace mma_tf32;

constexpr int kP = 64, kNmax = 128, kQmax = 256, kTile = 64, kThreads = 256, kHpgMax = 128;
constexpr int kSs = kTile + 2;         // row stride of the shared B operands: 2 mod 8 (step16's bank rule)
constexpr int kStage1 = 2 * kP * kSs;  // floats of the two state buffers

template <bool kIsC>
__device__ __forceinline__ void bc_block(const BcArgs& a, float* smem, int ntile, int rb, bool vin, bool vst,
                                         bool vcb) {
  const int H = a.d.H, G = a.d.G, N = a.d.N, Q = a.ct.Q, hpg = H / G;
  const int c = blockIdx.x / G, g = blockIdx.x % G;
  const int start = a.ct.chunk_start[c], len = a.ct.chunk_len[c], rows = (len + 15) & ~15;
  const int64_t HP = static_cast<int64_t>(H) * kP;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gq = lane >> 2, tq = lane & 3;
  const int n0 = kTile * ntile, ncols = min(kTile, N - n0);
  const int mt = rb / 16 + (warp & 3), wc = 32 * (warp >> 2), nts = max(0, min(4, (ncols - wc) / 8));
  const bool active = 16 * mt < len;  // warp-uniform
  const int r0 = 16 * mt + gq, r1 = r0 + 8;
  const int q0 = min(r0, len - 1), q1 = min(r1, len - 1);
  float* st = smem;              // [2][P][kSs]: St of the current and the next head, TF32
  float* sc = smem + kStage1;    // [hpg][64]: row scales per head (0 past len)
  float* ip = sc + hpg * kTile;  // [2][hpg][64]: inter partials of the two column halves (dC)
  const float* stg = (kIsC ? a.S0 : a.dS) + static_cast<int64_t>(c) * H * kP * N + n0;
  for (int e = tid; e < hpg * kTile; e += kThreads) {
    const int k = e / kTile, i = rb + e % kTile, h = g * hpg + k;
    const float* csh = a.cs + (static_cast<int64_t>(c) * H + h) * Q;
    float v = 0.0f;
    if (i < len) {
      if constexpr (kIsC)
        v = __expf(csh[i]);
      else
        v = __expf(csh[len - 1] - csh[i]) * a.dt[static_cast<int64_t>(start + i) * H + h];
    }
    sc[e] = v;
  }
  // St of head k (P rows x the tile's columns, 0 past N): 4 float4 per thread.
  float4 pre[4];
  auto load_state = [&](int k) {
    const float* src = stg + static_cast<int64_t>(g * hpg + k) * kP * N;
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int e = tid + u * kThreads, p = e / (kTile / 4), col = 4 * (e % (kTile / 4));
      pre[u] = col < ncols ? load4(src + static_cast<int64_t>(p) * N + col, vst) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
  };
  auto store_state = [&](float* dst) {
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int e = tid + u * kThreads, p = e / (kTile / 4), col = 4 * (e % (kTile / 4));
      float* d = dst + p * kSs + col;  // kSs even: 8-byte aligned pairs
      *reinterpret_cast<float2*>(d) = make_float2(round_tf32(pre[u].x), round_tf32(pre[u].y));
      *reinterpret_cast<float2*>(d + 2) = make_float2(round_tf32(pre[u].z), round_tf32(pre[u].w));
    }
  };
  load_state(0);
  store_state(st);
  // C at this lane's accumulator positions (dC: the inter dot), 0 past the warp's columns.
  float cv[4][4];
  if constexpr (kIsC) {
    const float* cg = a.xbc + static_cast<int64_t>(start) * a.ld + HP + static_cast<int64_t>(G + g) * N + n0 + wc;
#pragma unroll
    for (int nt = 0; nt < 4; ++nt) {
      const int n = 8 * nt + 2 * tq;
      const bool ok = nt < nts;
      cv[nt][0] = ok ? __ldg(cg + static_cast<int64_t>(q0) * a.ld + n) : 0.0f;
      cv[nt][1] = ok ? __ldg(cg + static_cast<int64_t>(q0) * a.ld + n + 1) : 0.0f;
      cv[nt][2] = ok ? __ldg(cg + static_cast<int64_t>(q1) * a.ld + n) : 0.0f;
      cv[nt][3] = ok ? __ldg(cg + static_cast<int64_t>(q1) * a.ld + n + 1) : 0.0f;
    }
  }
  __syncthreads();
  float acc[4][4] = {};
  for (int k = 0; k < hpg; ++k) {
    if (k + 1 < hpg) load_state(k + 1);  // in flight during this head's products
    const float* stb = st + (k & 1) * kP * kSs;
    if (active) {
      const int h = g * hpg + k;
      const float* A0 = kIsC ? a.dy + static_cast<int64_t>(start + q0) * HP + static_cast<int64_t>(h) * kP
                             : a.xbc + static_cast<int64_t>(start + q0) * a.ld + static_cast<int64_t>(h) * kP;
      const float* A1 = kIsC ? a.dy + static_cast<int64_t>(start + q1) * HP + static_cast<int64_t>(h) * kP
                             : a.xbc + static_cast<int64_t>(start + q1) * a.ld + static_cast<int64_t>(h) * kP;
      const float s0 = sc[k * kTile + r0 - rb], s1 = sc[k * kTile + r1 - rb];
      float4 u0[kP / 16], u1[kP / 16];
#pragma unroll
      for (int ks = 0; ks < kP / 16; ++ks) {
        u0[ks] = load4(A0 + 16 * ks + 4 * tq, vin);
        u1[ks] = load4(A1 + 16 * ks + 4 * tq, vin);
      }
      float tmp[4][4] = {};
#pragma unroll
      for (int ks = 0; ks < kP / 16; ++ks) {
        const uint32_t f0[4] = {to_tf32(s0 * u0[ks].x), to_tf32(s0 * u0[ks].y), to_tf32(s0 * u0[ks].z),
                                to_tf32(s0 * u0[ks].w)};
        const uint32_t f1[4] = {to_tf32(s1 * u1[ks].x), to_tf32(s1 * u1[ks].y), to_tf32(s1 * u1[ks].z),
                                to_tf32(s1 * u1[ks].w)};
        const float* b = stb + (16 * ks + 4 * tq) * kSs + wc + gq;
        if constexpr (kIsC)
          step16<4>(tmp, f0, f1, b, kSs, nts);
        else
          step16<4>(acc, f0, f1, b, kSs, nts);
      }
      if constexpr (kIsC) {  // inter_hi = <this head's term of row i, C_i>, then
                             // the term joins the sum
        float d0 = 0.0f, d1 = 0.0f;
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) {
          d0 += tmp[nt][0] * cv[nt][0] + tmp[nt][1] * cv[nt][1];
          d1 += tmp[nt][2] * cv[nt][2] + tmp[nt][3] * cv[nt][3];
#pragma unroll
          for (int e = 0; e < 4; ++e) acc[nt][e] += tmp[nt][e];
        }
        d0 += __shfl_xor_sync(0xffffffffu, d0, 1);
        d0 += __shfl_xor_sync(0xffffffffu, d0, 2);
        d1 += __shfl_xor_sync(0xffffffffu, d1, 1);
        d1 += __shfl_xor_sync(0xffffffffu, d1, 2);
        if (tq == 0) {
          float* ipw = ip + ((warp >> 2) * hpg + k) * kTile - rb;
          ipw[r0] = d0;
          ipw[r1] = d1;
        }
      }
    } else if (kIsC && lane < 16) {  // rows past len: their inter slots are not
                                     // read, but keep ip defined
      ip[((warp >> 2) * hpg + k) * kTile + 16 * (warp & 3) + lane] = 0.0f;
    }
    if (k + 1 < hpg) store_state(st + ((k + 1) & 1) * kP * kSs);
    __syncthreads();
  }
  if constexpr (kIsC) {  // the two column halves' inter partials in a fixed
                         // order; one slot per column tile
    for (int e = tid; e < hpg * kTile; e += kThreads) {
      const int k = e / kTile, i = rb + e % kTile;
      if (i < len)
        a.inter[((static_cast<int64_t>(c) * H + g * hpg + k) * a.inter_slots + ntile) * Q + i] =
            ip[e] + ip[hpg * kTile + e];
    }
    __syncthreads();  // rs below overwrites ip
  }
  // Stage 2 operand rows (TF32, 0 past len / N): dC B rows [0, kend), dB C rows [rb, rows).
  float* rs = smem;
  const int rbeg = kIsC ? 0 : rb, rend = kIsC ? min(rb + kTile, rows) : rows;
  const float* og = a.xbc + static_cast<int64_t>(start) * a.ld + HP + static_cast<int64_t>((kIsC ? 0 : G) + g) * N + n0;
  for (int e0 = tid; e0 < (rend - rbeg) * (kTile / 4); e0 += 4 * kThreads) {
    float4 v[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int e = e0 + u * kThreads, r = rbeg + e / (kTile / 4), col = 4 * (e % (kTile / 4));
      v[u] = r < len && col < ncols ? load4(og + static_cast<int64_t>(r) * a.ld + col, vin)
                                    : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int e = e0 + u * kThreads, r = e / (kTile / 4), col = 4 * (e % (kTile / 4));
      if (rbeg + r < rend) {
        float* d = rs + r * kSs + col;
        *reinterpret_cast<float2*>(d) = make_float2(round_tf32(v[u].x), round_tf32(v[u].y));
        *reinterpret_cast<float2*>(d + 2) = make_float2(round_tf32(v[u].z), round_tf32(v[u].w));
      }
    }
  }
  __syncthreads();
  if (!active) return;
  const int S = a.splits;
  const int64_t QQ = static_cast<int64_t>(Q) * Q;
  const float* dcb = a.dcb + static_cast<int64_t>(c * G + g) * S * QQ;
  if constexpr (kIsC) {  // Σ_{j <= i} dCB[i, j] B[j, :], k-steps 0..mt, A = rows
                         // r0, r1 of dCB
    for (int kb = 0; kb <= mt; ++kb) {
      const int jb = 16 * kb + 4 * tq;
      float e0[4] = {}, e1[4] = {};
      for (int sp = 0; sp < S; ++sp) {  // the splits' partial sums in a fixed order
        const float4 w0 = load4(dcb + sp * QQ + static_cast<int64_t>(q0) * Q + jb, vcb);
        const float4 w1 = load4(dcb + sp * QQ + static_cast<int64_t>(q1) * Q + jb, vcb);
        e0[0] += w0.x, e0[1] += w0.y, e0[2] += w0.z, e0[3] += w0.w;
        e1[0] += w1.x, e1[1] += w1.y, e1[2] += w1.z, e1[3] += w1.w;
      }
      uint32_t f0[4], f1[4];
#pragma unroll
      for (int u = 0; u < 4; ++u) {  // outside the causal part or past len:
                                     // unwritten scratch, selected away
        f0[u] = to_tf32(jb + u <= r0 && r0 < len ? e0[u] : 0.0f);
        f1[u] = to_tf32(jb + u <= r1 && r1 < len ? e1[u] : 0.0f);
      }
      step16<4>(acc, f0, f1, rs + jb * kSs + wc + gq, kSs, nts);
    }
  } else {  // Σ_{i >= j} dCB[i, j] C[i, :], k-steps mt..rows/16-1, A = columns
            // r0, r1 of dCB
    for (int kb = mt; kb < rows / 16; ++kb) {
      const int ib = 16 * kb + 4 * tq;
      float e0[4] = {}, e1[4] = {};
      for (int sp = 0; sp < S; ++sp) {
#pragma unroll
        for (int u = 0; u < 4; ++u) {
          const float* col = dcb + sp * QQ + static_cast<int64_t>(ib + u) * Q;
          e0[u] += __ldg(col + q0);
          e1[u] += __ldg(col + q1);
        }
      }
      uint32_t f0[4], f1[4];
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const int i = ib + u;
        f0[u] = to_tf32(i >= r0 && i < len && r0 < len ? e0[u] : 0.0f);
        f1[u] = to_tf32(i >= r1 && i < len && r1 < len ? e1[u] : 0.0f);
      }
      step16<4>(acc, f0, f1, rs + (ib - rb) * kSs + wc + gq, kSs, nts);
    }
  }
  float* out =
      a.dxbc + static_cast<int64_t>(start) * a.dx_stride + HP + static_cast<int64_t>((kIsC ? G : 0) + g) * N + n0 + wc;
#pragma unroll
  for (int nt = 0; nt < 4; ++nt)
    if (nt < nts) {
      const int n = 8 * nt + 2 * tq;
      if (r0 < len) {
        out[static_cast<int64_t>(r0) * a.dx_stride + n] = acc[nt][0];
        out[static_cast<int64_t>(r0) * a.dx_stride + n + 1] = acc[nt][1];
      }
      if (r1 < len) {
        out[static_cast<int64_t>(r1) * a.dx_stride + n] = acc[nt][2];
        out[static_cast<int64_t>(r1) * a.dx_stride + n + 1] = acc[nt][3];
      }
    }
}

// blockIdx: x = chunk x G + group, y = 64-row tile, z = 2 x column tile + (dC ? 1 : 0).
__global__ void __launch_bounds__(kThreads, 2) bc_kernel(BcArgs a, bool vin, bool vst, bool vcb) {
  extern __shared__ __align__(16) float smem[];
  const int c = blockIdx.x / a.d.G, rb = kTile * static_cast<int>(blockIdx.y);
  if (rb >= a.ct.chunk_len[c]) return;
  if (blockIdx.z & 1)
    bc_block<true>(a, smem, blockIdx.z / 2, rb, vin, vst, vcb);
  else
    bc_block<false>(a, smem, blockIdx.z / 2, rb, vin, vst, vcb);
}

int smem_floats(const SsdDims& d, int Q) {
  const int stage1 = kStage1 + 3 * (d.H / d.G) * kTile, stage2 = Q * kSs;
  return stage1 > stage2 ? stage1 : stage2;
}

}  // namespace

bool bc_supported(const SsdDims& d, int32_t Q) {
  return d.P == kP && d.N % 16 == 0 && d.N <= kNmax && Q % 16 == 0 && Q <= kQmax && Q >= 16 && d.H / d.G <= kHpgMax;
}

void bc_product(const BcArgs& a, cudaStream_t s) {
  const int smem = smem_floats(a.d, a.ct.Q) * static_cast<int>(sizeof(float));
  const unsigned ntiles = static_cast<unsigned>((a.d.N + kTile - 1) / kTile);
  const dim3 grid(static_cast<unsigned>(a.ct.count) * a.d.G, (a.ct.Q + kTile - 1) / kTile, 2 * ntiles);
  allow_smem(bc_kernel, smem);
  const bool vin = aligned16(a.xbc) && aligned16(a.dy) && a.ld % 4 == 0;
  const bool vst = aligned16(a.S0) && aligned16(a.dS) && a.d.N % 4 == 0;
  bc_kernel<<<grid, kThreads, smem, s>>>(a, vin, vst, aligned16(a.dcb));
  PCM_CUDA_LAUNCH();
}

}  // namespace pcm::cuda::bwd_tc
