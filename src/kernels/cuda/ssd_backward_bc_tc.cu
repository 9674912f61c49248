// dB and dC of the chunked SSD backward per group with mma.sync TF32 (m16n8k8, fp32 accumulation), one kernel
// each, blocks per (64-row tile, 64-column tile of N; chunk and group); warp w owns 16 rows (w % 4) x 16 (dC)
// or 32 (dB) columns (w / 4). Why per group: B and C are shared by the group's heads, so
//   stage 1  Σ_h (scale_h ∘ A_h) St_h   one product with k = (head, p) of H / G x 64 (A = dY or X rows of head
//            h, St = S0 or dS: per head through cp.async stages in shared memory, the next heads' copies in
//            flight while this one multiplies)
//   stage 2  (Σ_h dCB_h) B  or  (Σ_h dCB_h)ᵀ C   once per group, not once per head as before
// and the outputs go straight into dxbc: no per-head dB/dC partials (2 x T x H x N floats) and no group sum.
#include "kernels/cuda/cp_async.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/mma_tf32.cuh"
#include "kernels/cuda/ssd_backward_bc_tc.h"

namespace pcm::cuda::bwd_tc {
namespace {

using namespace mma_tf32;

constexpr int kP = 64, kNmax = 128, kQmax = 256, kTile = 64, kHpgMax = 64;
constexpr int kSs = kTile + 2;  // row stride of the shared B operands: 2 mod 8 (step16's bank rule)
constexpr int kAs = kP + 16;    // row stride of the A rows: 16-byte loads of rows g and g + 1 hit 32 banks
// dC: 16 warps of 16 rows x 16 columns, 1 block per SM (its per-head temp accumulator for the inter dot would
// not fit 128 registers at 32 columns), 3 stages; dB: 8 warps of 16 x 32, 2 blocks per SM, 2 stages.
template <bool kIsC>
constexpr int kThr = kIsC ? 512 : 256;
template <bool kIsC>
constexpr int kWc = kIsC ? 16 : 32;  // columns per warp
template <bool kIsC>
constexpr int kStages = kIsC ? 3 : 2;
template <bool kIsC>
constexpr int kCopies = kTile* kTile / 4 / kThr<kIsC>;  // float4 copies per thread of a 64 x 64 tile
// Per thread: cs of its A rows (dB: and their dt, then cs_last).
template <bool kIsC>
constexpr int kScl = kIsC ? kCopies<kIsC> : 2 * kCopies<kIsC> + 1;
// Floats of one head's stage: A rows, St, then the threads' scale inputs ([kScl][threads]).
template <bool kIsC>
constexpr int kBuf = kTile* kAs + kP* kSs + kScl<kIsC>* kThr<kIsC>;
static_assert(kBuf<true> % 4 == 0 && kBuf<false> % 4 == 0, "16-byte aligned stages");

// Stage 1 per head k through a kStages-deep pipeline of cp.async copies: the copies of the next heads land
// while head k multiplies. A copy is rounded to TF32 (and A scaled) in place by the thread that issued it,
// then a barrier.
template <bool kIsC, bool kVec>
__device__ __forceinline__ void bc_block(const BcArgs& a, float* smem, int ntile, int rb, int c, int g) {
  constexpr int S = kStages<kIsC>, kThreads = kThr<kIsC>, kB = kBuf<kIsC>, kNw = kWc<kIsC> / 8;
  constexpr int kCw = kTile / kWc<kIsC>, kCp = kCopies<kIsC>;  // column groups, float4 copies per thread
  const int H = a.d.H, N = a.d.N, Q = a.ct.Q, hpg = H / a.d.G;
  const int start = a.ct.chunk_start[c], len = a.ct.chunk_len[c], rows = (len + 15) & ~15;
  const int64_t HP = static_cast<int64_t>(H) * kP;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gq = lane >> 2, tq = lane & 3;
  const int n0 = kTile * ntile, ncols = min(kTile, N - n0);
  const int mt = rb / 16 + (warp & 3), wc = kWc<kIsC> * (warp >> 2), nts = max(0, min(kNw, (ncols - wc) / 8));
  const bool active = 16 * mt < len;  // warp-uniform
  const int r0 = 16 * mt + gq, r1 = r0 + 8;
  const int q0 = min(r0, len - 1), q1 = min(r1, len - 1);
  float* ip = smem + S * kB;  // [kCw][hpg][64]: inter partials of the column groups (dC)
  const float* stg = (kIsC ? a.S0 : a.dS) + static_cast<int64_t>(c) * H * kP * N + n0;
  const float* ag = kIsC ? a.dy + static_cast<int64_t>(start) * HP : a.xbc + static_cast<int64_t>(start) * a.ld;
  const int64_t lda = kIsC ? HP : a.ld;
  // This thread's copies: A rows rr = tid / 16 + threads / 16 u (4 columns at 4 (tid % 16)), St rows likewise.
  const int c4 = 4 * (tid & 15);
  auto issue = [&](int k) {  // head k into stage k % S; an empty group past the last head keeps the count
    if (k < hpg) {
      const int h = g * hpg + k;
      float* A = smem + (k % S) * kB;
      float* St = A + kTile * kAs;
      float* scl = St + kP * kSs + tid;
      const float* csh = a.cs + (static_cast<int64_t>(c) * H + h) * Q;
#pragma unroll
      for (int u = 0; u < kCp; ++u) {
        const int rr = (tid >> 4) + kThreads / 16 * u, i = min(rb + rr, len - 1);
        cp_async::copy4f<kVec ? 16 : 4>(A + rr * kAs + c4, ag + static_cast<int64_t>(i) * lda + h * kP + c4,
                                        rb + rr < len);
        cp_async::copy4f<kVec ? 8 : 4>(
            St + rr * kSs + c4,
            stg + static_cast<int64_t>(h) * kP * N + static_cast<int64_t>(rr) * N + min(c4, ncols - 4), c4 < ncols);
        cp_async::copy4(scl + u * kThreads, csh + i, true);
        if constexpr (!kIsC)
          cp_async::copy4(scl + (kCp + u) * kThreads, a.dt + static_cast<int64_t>(start + i) * H + h, true);
      }
      if constexpr (!kIsC) cp_async::copy4(scl + 2 * kCp * kThreads, csh + len - 1, true);
    }
    cp_async::commit();
  };
  auto fixup = [&](int k) {
    float* A = smem + (k % S) * kB;
    float* St = A + kTile * kAs;
    const float* scl = St + kP * kSs + tid;
#pragma unroll
    for (int u = 0; u < kCp; ++u) {
      const int rr = (tid >> 4) + kThreads / 16 * u;
      float sc = 0.0f;  // rows past len: 0 (their copies are zero-filled too)
      if (rb + rr < len)
        sc = kIsC ? __expf(scl[u * kThreads])
                  : __expf(scl[2 * kCp * kThreads] - scl[u * kThreads]) * scl[(kCp + u) * kThreads];
      float4* pa = reinterpret_cast<float4*>(A + rr * kAs + c4);
      const float4 v = *pa;
      *pa = make_float4(round_tf32(sc * v.x), round_tf32(sc * v.y), round_tf32(sc * v.z), round_tf32(sc * v.w));
      float2* ps = reinterpret_cast<float2*>(St + rr * kSs + c4);  // kSs even: 8-byte aligned pairs
      const float2 s0 = ps[0], s1 = ps[1];
      ps[0] = make_float2(round_tf32(s0.x), round_tf32(s0.y));
      ps[1] = make_float2(round_tf32(s1.x), round_tf32(s1.y));
    }
  };
#pragma unroll
  for (int k = 0; k < S - 1; ++k) issue(k);
  // C at this lane's accumulator positions (dC: the inter dot), 0 past the warp's columns.
  float cv[kNw][4];
  if constexpr (kIsC) {
    const float* cg = a.xbc + static_cast<int64_t>(start) * a.ld + HP + static_cast<int64_t>(a.d.G + g) * N + n0 + wc;
#pragma unroll
    for (int nt = 0; nt < kNw; ++nt) {
      const int n = 8 * nt + 2 * tq;
      const bool ok = nt < nts;
      cv[nt][0] = ok ? __ldg(cg + static_cast<int64_t>(q0) * a.ld + n) : 0.0f;
      cv[nt][1] = ok ? __ldg(cg + static_cast<int64_t>(q0) * a.ld + n + 1) : 0.0f;
      cv[nt][2] = ok ? __ldg(cg + static_cast<int64_t>(q1) * a.ld + n) : 0.0f;
      cv[nt][3] = ok ? __ldg(cg + static_cast<int64_t>(q1) * a.ld + n + 1) : 0.0f;
    }
  }
  float acc[kNw][4] = {};
  const int rl0 = 16 * (warp & 3) + gq;  // block row of r0
  for (int k = 0; k < hpg; ++k) {
    cp_async::wait_group<S - 2>();  // head k's copies (this thread's) have landed
    fixup(k);
    __syncthreads();   // head k's stage complete; every warp is done with head k - 1's stage
    issue(k + S - 1);  // into head k - 1's stage
    const float* A = smem + (k % S) * kB;
    const float* stb = A + kTile * kAs;
    if (active) {
      float tmp[kNw][4] = {};
#pragma unroll
      for (int ks = 0; ks < kP / 16; ++ks) {
        const float4 v0 = *reinterpret_cast<const float4*>(A + rl0 * kAs + 16 * ks + 4 * tq);
        const float4 v1 = *reinterpret_cast<const float4*>(A + (rl0 + 8) * kAs + 16 * ks + 4 * tq);
        const uint32_t f0[4] = {bits(v0.x), bits(v0.y), bits(v0.z), bits(v0.w)};
        const uint32_t f1[4] = {bits(v1.x), bits(v1.y), bits(v1.z), bits(v1.w)};
        const float* b = stb + (16 * ks + 4 * tq) * kSs + wc + gq;
        if constexpr (kIsC)
          step16<kNw>(tmp, f0, f1, b, kSs, nts);
        else
          step16<kNw>(acc, f0, f1, b, kSs, nts);
      }
      if constexpr (kIsC) {  // inter_hi = <this head's term of row i, C_i>, then the term joins the sum
        float d0 = 0.0f, d1 = 0.0f;
#pragma unroll
        for (int nt = 0; nt < kNw; ++nt) {
          if (nt < nts) {
            d0 += tmp[nt][0] * cv[nt][0] + tmp[nt][1] * cv[nt][1];
            d1 += tmp[nt][2] * cv[nt][2] + tmp[nt][3] * cv[nt][3];
          }
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
    }
  }
  cp_async::wait_group<0>();  // only empty groups are left; none may land on stage 2's rows
  __syncthreads();            // ip complete; the stages are free for stage 2's rows
  if constexpr (kIsC) {       // the two column halves' inter partials in a fixed order; one slot per column tile
    for (int e = tid; e < hpg * kTile; e += kThreads) {
      const int k = e / kTile, i = rb + e % kTile;
      if (i < len) {
        float sum = 0.0f;
#pragma unroll
        for (int q = 0; q < kCw; ++q) sum += ip[q * hpg * kTile + e];
        a.inter[((static_cast<int64_t>(c) * H + g * hpg + k) * a.inter_slots + ntile) * Q + i] = sum;
      }
    }
    __syncthreads();  // rs below overwrites ip
  }
  // Stage 2 operand rows (TF32, 0 past len / N): dC B rows [0, kend), dB C rows [rb, rows).
  float* rs = smem;
  const int rbeg = kIsC ? 0 : rb, rend = kIsC ? min(rb + kTile, rows) : rows;
  const float* og =
      a.xbc + static_cast<int64_t>(start) * a.ld + HP + static_cast<int64_t>((kIsC ? 0 : a.d.G) + g) * N + n0;
  for (int e0 = tid; e0 < (rend - rbeg) * (kTile / 4); e0 += 4 * kThreads) {
    float4 v[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int e = e0 + u * kThreads, r = rbeg + e / (kTile / 4), col = 4 * (e % (kTile / 4));
      v[u] = r < len && col < ncols ? load4(og + static_cast<int64_t>(r) * a.ld + col, kVec)
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
  const int splits = a.splits;
  const int64_t QQ = static_cast<int64_t>(Q) * Q;
  const float* dcb = a.dcb + static_cast<int64_t>(c * a.d.G + g) * splits * QQ;
  if constexpr (kIsC) {  // Σ_{j <= i} dCB[i, j] B[j, :], k-steps 0..mt, A = rows r0, r1 of dCB
    for (int kb = 0; kb <= mt; ++kb) {
      const int jb = 16 * kb + 4 * tq;
      float e0[4] = {}, e1[4] = {};
      for (int sp = 0; sp < splits; ++sp) {  // the splits' partial sums in a fixed order
        const float4 w0 = load4(dcb + sp * QQ + static_cast<int64_t>(q0) * Q + jb, kVec);
        const float4 w1 = load4(dcb + sp * QQ + static_cast<int64_t>(q1) * Q + jb, kVec);
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
      step16<kNw>(acc, f0, f1, rs + jb * kSs + wc + gq, kSs, nts);
    }
  } else {  // Σ_{i >= j} dCB[i, j] C[i, :], k-steps mt..rows/16-1, A = columns
            // r0, r1 of dCB
    for (int kb = mt; kb < rows / 16; ++kb) {
      const int ib = 16 * kb + 4 * tq;
      float e0[4] = {}, e1[4] = {};
      for (int sp = 0; sp < splits; ++sp) {
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
      step16<kNw>(acc, f0, f1, rs + (ib - rb) * kSs + wc + gq, kSs, nts);
    }
  }
  float* out = a.dxbc + static_cast<int64_t>(start) * a.dx_stride + HP +
               static_cast<int64_t>((kIsC ? a.d.G : 0) + g) * N + n0 + wc;
#pragma unroll
  for (int nt = 0; nt < kNw; ++nt)
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

// blockIdx: x = column tile + column tiles x row tile, y = chunk x G + group: the blocks that read one
// chunk's rows and states run side by side (L2 reuse).
template <bool kIsC, bool kVec>
__global__ void __launch_bounds__(kThr<kIsC>, kIsC ? 1 : 2) bc_kernel(BcArgs a) {
  extern __shared__ __align__(16) float smem[];
  const int ntiles = (a.d.N + kTile - 1) / kTile;
  const int c = blockIdx.y / a.d.G, g = blockIdx.y % a.d.G, rb = kTile * (blockIdx.x / ntiles);
  if (rb >= a.ct.chunk_len[c]) return;
  bc_block<kIsC, kVec>(a, smem, blockIdx.x % ntiles, rb, c, g);
}

int smem_floats(const SsdDims& d, int Q, bool is_c) {
  const int stage1 =
      is_c ? kStages<true> * kBuf<true> + kTile / kWc<true> * (d.H / d.G) * kTile : kStages<false> * kBuf<false>;
  const int stage2 = Q * kSs;
  return stage1 > stage2 ? stage1 : stage2;
}

template <bool kIsC>
void launch(const BcArgs& a, bool vec, cudaStream_t s) {
  const int smem = smem_floats(a.d, a.ct.Q, kIsC) * static_cast<int>(sizeof(float));
  const unsigned ntiles = static_cast<unsigned>((a.d.N + kTile - 1) / kTile), qtiles = (a.ct.Q + kTile - 1) / kTile;
  auto kernel = vec ? bc_kernel<kIsC, true> : bc_kernel<kIsC, false>;
  allow_smem(kernel, smem);
  kernel<<<dim3(ntiles * qtiles, static_cast<unsigned>(a.ct.count) * a.d.G), kThr<kIsC>, smem, s>>>(a);
  PCM_CUDA_LAUNCH();
}

}  // namespace

bool bc_supported(const SsdDims& d, int32_t Q) {
  return d.P == kP && d.N % 16 == 0 && d.N <= kNmax && Q % 16 == 0 && Q <= kQmax && Q >= 16 && d.H / d.G <= kHpgMax;
}

void bc_product(const BcArgs& a, cudaStream_t s) {
  // 16-byte copies and loads where every base and stride allows (always, except the tests' odd row strides).
  const bool vec = aligned16(a.xbc) && aligned16(a.dy) && a.ld % 4 == 0 && aligned16(a.S0) && aligned16(a.dS) &&
                   a.d.N % 4 == 0 && aligned16(a.dcb);
  launch<true>(a, vec, s);
  launch<false>(a, vec, s);
}

}  // namespace pcm::cuda::bwd_tc
