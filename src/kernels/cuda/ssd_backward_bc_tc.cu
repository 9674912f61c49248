// dB and dC of the chunked SSD backward per group with mma.sync TF32 (m16n8k8, fp32 accumulation), one kernel
// each, blocks of 16 warps per (64-row tile, 64-column tile of N; chunk and group). Why per group: B and C are
// shared by the group's heads, so
//   stage 1  Σ_h diag(scale_h) (A_h St_h)   one product with k = (head, p) of H / G x 64 (A = dY or X rows of head
//            h, St = S0 or dS), the per-row, per-head scale (e^cs, or w = e^(cs_last − cs) dt) applied to the head's
//            16 x 32 partial product in registers, not to the operand
//   stage 2  (Σ_h dCB_h) B  or  (Σ_h dCB_h)ᵀ C   once per group, not once per head as before
// and the outputs go straight into dxbc: no per-head dB/dC partials (2 x T x H x N floats) and no group sum.
// Stage 1 takes two heads per cp.async stage (warp w: rows 16 (w % 4), head 2s + (w / 4) % 2 of the pair, columns
// 32 (w / 8) .. + 31), three stages (222 KB: 1 block of 16 warps per SM): one barrier per two heads, and nothing
// rewrites a stage in shared memory: St arrives rounded to TF32 (the passes write it so), A is rounded in registers
// (one integer add: the mma ignores the low 13 bits); dB's dS comes in 4 x 4 blocks (ssd_state_blocks.cuh), one B
// fragment per 16-byte load (dC's S0 is row-major: four scalar loads). dC's inter dot goes to one slot per 32
// columns. The two head halves' sums meet through shared memory before stage 2, where each warp owns 16 rows x 16
// columns.
#include "kernels/cuda/cp_async.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/mma_tf32.cuh"
#include "kernels/cuda/ssd_backward_bc_tc.h"
#include "kernels/cuda/ssd_state_blocks.cuh"

namespace pcm::cuda::bwd_tc {
namespace {

using namespace mma_tf32;

constexpr int kP = 64, kNmax = 128, kQmax = 256, kTile = 64, kThreads = 512, kStages = 3;
constexpr int kSs = kTile + 2;  // row stride of the shared B operands: 2 mod 8 (step16's bank rule)
constexpr int kAs = kP + 16;    // row stride of the A rows: 16-byte loads of rows g and g + 1 hit 32 banks
// dB's dS arrives in 4 x 4 blocks (ssd_state_blocks.cuh) and stays so: a 16-byte piece is p = 4t..4t+3 of one column,
// a whole B fragment. Row-quad stride 8 mod 32: the 8 lanes of a load phase (t = 0..3, g = 0, 1) hit 32 banks.
constexpr int kSb = 16 * (kTile / 4) + 8;
static_assert((kP / 4) * kSb == kP * kSs, "dB's blocked dS takes dC's St space");
// One head's part of a stage: A rows [64][kAs], St [64][kSs], cs and dt of the rows, cs_last (+ 3 pad).
constexpr int kHead = kTile * kAs + kP * kSs + 2 * kTile + 4;
constexpr int kStage = 2 * kHead;                 // the pair of heads 2s, 2s + 1
constexpr int kXch = (kThreads / 32) * 8 * 32;  // the halves' exchange: [sending warp][8 values][lane]
static_assert(kHead % 4 == 0 && (kTile * kAs) % 4 == 0, "16-byte aligned stages");

template <bool kIsC, bool kVec>
__device__ __forceinline__ void bc_block(const BcArgs& a, float* smem, int ntile, int rb, int c, int g) {
  const int H = a.d.H, N = a.d.N, Q = a.ct.Q, hpg = H / a.d.G, pairs = (hpg + 1) / 2;
  const int start = a.ct.chunk_start[c], len = a.ct.chunk_len[c], rows = (len + 15) & ~15;
  const int64_t HP = static_cast<int64_t>(H) * kP;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gq = lane >> 2, tq = lane & 3;
  const int n0 = kTile * ntile, ncols = min(kTile, N - n0);
  const int rw = warp & 3, hp = (warp >> 2) & 1, ch = warp >> 3;  // row warp, head of the pair, column half
  const int mt = rb / 16 + rw, rl0 = 16 * rw + gq, wc1 = 32 * ch;
  const bool active = 16 * mt < len;  // warp-uniform
  const int r0 = 16 * mt + gq, r1 = r0 + 8;
  const int q0 = min(r0, len - 1), q1 = min(r1, len - 1);
  const int nts = max(0, min(4, (ncols - wc1) / 8));  // stage 1 column blocks of this warp (ncols % 8 == 0)
  const float* stg = (kIsC ? a.S0 + n0 : a.dS) + static_cast<int64_t>(c) * H * kP * N;
  const float* ag = kIsC ? a.dy + static_cast<int64_t>(start) * HP : a.xbc + static_cast<int64_t>(start) * a.ld;
  const int64_t lda = kIsC ? HP : a.ld;
  // This thread's copies per head: A and St rows rr = tid / 16 + 32 u, 4 columns at 4 (tid % 16).
  const int c4 = 4 * (tid & 15);
  auto issue = [&](int s) {  // heads 2s, 2s + 1 into stage s % 3; an empty group past the last pair keeps the count
    for (int e = 0; e < 2; ++e) {
      const int k = 2 * s + e;
      if (k >= hpg) break;
      const int h = g * hpg + k;
      float* A = smem + (s % kStages) * kStage + e * kHead;
      float* St = A + kTile * kAs;
      float* csS = St + kP * kSs;
      const float* csh = a.cs + (static_cast<int64_t>(c) * H + h) * Q;
#pragma unroll
      for (int u = 0; u < kTile * 16 / kThreads; ++u) {
        const int rr = (tid >> 4) + (kThreads / 16) * u, i = min(rb + rr, len - 1);
        cp_async::copy4f<kVec ? 16 : 4>(A + rr * kAs + c4, ag + static_cast<int64_t>(i) * lda + h * kP + c4,
                                        rb + rr < len);
        if constexpr (kIsC) {
          cp_async::copy4f<kVec ? 8 : 4>(
              St + rr * kSs + c4,
              stg + static_cast<int64_t>(h) * kP * N + static_cast<int64_t>(rr) * N + min(c4, ncols - 4), c4 < ncols);
        } else {  // piece q of block (p quad pq, the tile's column quad nq), as in device memory
          const int e = tid + kThreads * u, q = e & 3, nq = (e >> 2) & 15, pq = e >> 6;
          const int nqc = min(nq, ncols / 4 - 1);  // past the tile's columns: zeros, never read
          cp_async::copy4f<kVec ? 16 : 4>(
              St + pq * kSb + 16 * nq + 4 * q,
              stg + static_cast<int64_t>(h) * kP * N + (static_cast<int64_t>(pq) * (N / 4) + n0 / 4 + nqc) * 16 + 4 * q,
              nq < ncols / 4);
        }
      }
      if (tid < kTile) {  // rows past len: cs = dt = 0 (their A rows are 0 too)
        const int i = min(rb + tid, len - 1);
        cp_async::copy4(csS + tid, csh + i, rb + tid < len);
        if constexpr (!kIsC) cp_async::copy4(csS + kTile + tid, a.dt + static_cast<int64_t>(start + i) * H + h,
                                             rb + tid < len);
      } else if (!kIsC && tid == kTile) {
        cp_async::copy4(csS + 2 * kTile, csh + len - 1, true);
      }
    }
    cp_async::commit();
  };
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) issue(s);
  // C at this lane's accumulator positions (dC: the inter dot), 0 past the tile's columns.
  float cv[4][4];
  if constexpr (kIsC) {
    const float* cg =
        a.xbc + static_cast<int64_t>(start) * a.ld + HP + static_cast<int64_t>(a.d.G + g) * N + n0 + wc1;
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
  float acc[4][4] = {};  // this warp's heads (even or odd), its 32 columns
  for (int s = 0; s < pairs; ++s) {
    cp_async::wait_group<kStages - 2>();  // pair s's copies (this thread's) have landed; s + 1's may not
    __syncthreads();                      // pair s complete for all; every warp is done with pair s - 1's stage
    issue(s + kStages - 1);               // into pair s - 1's stage
    const int k = 2 * s + hp;
    if (!active || k >= hpg || nts == 0) continue;
    const float* A = smem + (s % kStages) * kStage + hp * kHead;
    const float* St = A + kTile * kAs;
    const float* csS = St + kP * kSs;
    float tmp[4][4] = {};
#pragma unroll
    for (int ks = 0; ks < kP / 16; ++ks) {
      const float4 v0 = *reinterpret_cast<const float4*>(A + rl0 * kAs + 16 * ks + 4 * tq);
      const float4 v1 = *reinterpret_cast<const float4*>(A + (rl0 + 8) * kAs + 16 * ks + 4 * tq);
      const uint32_t f0[4] = {rna_bits(v0.x), rna_bits(v0.y), rna_bits(v0.z), rna_bits(v0.w)};
      const uint32_t f1[4] = {rna_bits(v1.x), rna_bits(v1.y), rna_bits(v1.z), rna_bits(v1.w)};
      if constexpr (kIsC) {
        step16<4>(tmp, f0, f1, St + (16 * ks + 4 * tq) * kSs + wc1 + gq, kSs, nts);
      } else {  // dS[16 ks + 4t .. + 3][wc1 + 8 nt + g]: block (4 ks + t, wc1 / 4 + 2 nt + g / 4), piece g % 4
        const float* b = St + (4 * ks + tq) * kSb + 4 * wc1 + 16 * (gq >> 2) + 4 * (gq & 3);
        float4 bv[4];
#pragma unroll
        for (int nt = 0; nt < 4; ++nt)  // the k-halves in two sweeps, as step16
          if (nt < nts) {
            bv[nt] = *reinterpret_cast<const float4*>(b + 32 * nt);
            mma(tmp[nt], f0[0], f1[0], f0[1], f1[1], bits(bv[nt].x), bits(bv[nt].y));
          }
#pragma unroll
        for (int nt = 0; nt < 4; ++nt)
          if (nt < nts) mma(tmp[nt], f0[2], f1[2], f0[3], f1[3], bits(bv[nt].z), bits(bv[nt].w));
      }
    }
    float sc0, sc1;  // the head's row scales (rows past len: their products are 0)
    if constexpr (kIsC) {
      sc0 = __expf(csS[rl0]);
      sc1 = __expf(csS[rl0 + 8]);
    } else {
      const float last = csS[2 * kTile];
      sc0 = __expf(last - csS[rl0]) * csS[kTile + rl0];
      sc1 = __expf(last - csS[rl0 + 8]) * csS[kTile + rl0 + 8];
    }
    float d0 = 0.0f, d1 = 0.0f;
#pragma unroll
    for (int nt = 0; nt < 4; ++nt) {
      if constexpr (kIsC) {
        d0 += tmp[nt][0] * cv[nt][0] + tmp[nt][1] * cv[nt][1];
        d1 += tmp[nt][2] * cv[nt][2] + tmp[nt][3] * cv[nt][3];
      }
      acc[nt][0] += sc0 * tmp[nt][0];
      acc[nt][1] += sc0 * tmp[nt][1];
      acc[nt][2] += sc1 * tmp[nt][2];
      acc[nt][3] += sc1 * tmp[nt][3];
    }
    if constexpr (kIsC) {  // inter_hi = e^cs_hi <this head's term of row i, C_i> over the warp's 32 columns
      d0 += __shfl_xor_sync(0xffffffffu, d0, 1);
      d0 += __shfl_xor_sync(0xffffffffu, d0, 2);
      d1 += __shfl_xor_sync(0xffffffffu, d1, 1);
      d1 += __shfl_xor_sync(0xffffffffu, d1, 2);
      if (tq == 0) {
        const int slot = 2 * ntile + ch;
        float* ip = a.inter + ((static_cast<int64_t>(c) * H + g * hpg + k) * a.inter_slots + slot) * Q;
        if (r0 < len) ip[r0] = sc0 * d0;
        if (r1 < len) ip[r1] = sc1 * d1;
      }
    }
  }
  cp_async::wait_group<0>();  // only empty groups are left
  __syncthreads();            // the stages are free for the exchange and stage 2's rows
  // Stage 2 columns of this warp: 16 at 32 ch + 16 hp (column blocks 2 hp, 2 hp + 1 of its 4); the other two go to
  // the partner warp (same rows and column half, the other heads), lane by lane.
  float* xch = smem + kQmax * kSs;
  if (active) {
    float* out = xch + (warp ^ 4) * 8 * 32 + lane;
#pragma unroll
    for (int j = 0; j < 2; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) out[(4 * j + e) * 32] = hp ? acc[j][e] : acc[2 + j][e];
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
  float sum[2][4];  // even heads + odd heads (the same sum in both warps: a + b == b + a)
  {
    const float* in = xch + warp * 8 * 32 + lane;
#pragma unroll
    for (int j = 0; j < 2; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) sum[j][e] = (hp ? acc[2 + j][e] : acc[j][e]) + in[(4 * j + e) * 32];
  }
  const int wc = wc1 + 16 * hp, nts2 = max(0, min(2, (ncols - wc) / 8));
  const int64_t QQ = static_cast<int64_t>(Q) * Q;
  // dC: rows r0, r1 of Σ dCB; dB: its columns r0, r1 = rows of the transpose. k-steps 0..mt (dC) or mt.. (dB);
  // the next step's row pieces in flight during this one's products.
  const float* dm = (kIsC ? a.dcb : a.dcbt) + static_cast<int64_t>(c * a.d.G + g) * QQ;
  const float* m0 = dm + static_cast<int64_t>(q0) * Q + 4 * tq;
  const float* m1 = dm + static_cast<int64_t>(q1) * Q + 4 * tq;
  const int kb0 = kIsC ? 0 : mt, kb1 = kIsC ? mt + 1 : rows / 16;
  float4 w0 = load4(m0 + 16 * kb0, kVec), w1 = load4(m1 + 16 * kb0, kVec);
  for (int kb = kb0; kb < kb1; ++kb) {
    const float e0[4] = {w0.x, w0.y, w0.z, w0.w}, e1[4] = {w1.x, w1.y, w1.z, w1.w};
    if (kb + 1 < kb1) {
      w0 = load4(m0 + 16 * (kb + 1), kVec);
      w1 = load4(m1 + 16 * (kb + 1), kVec);
    }
    const int kk = 16 * kb + 4 * tq;  // dC: j of A = dCB[i, j]; dB: i of A = dCB[i, j]ᵀ
    uint32_t f0[4], f1[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) {  // outside the causal part or past len: 0 (selected, never multiplied)
      const int k = kk + u;
      const bool ok0 = kIsC ? k <= r0 && r0 < len : k >= r0 && k < len && r0 < len;
      const bool ok1 = kIsC ? k <= r1 && r1 < len : k >= r1 && k < len && r1 < len;
      f0[u] = rna_bits(ok0 ? e0[u] : 0.0f);
      f1[u] = rna_bits(ok1 ? e1[u] : 0.0f);
    }
    step16<2>(sum, f0, f1, rs + (kk - rbeg) * kSs + wc + gq, kSs, nts2);
  }
  float* out = a.dxbc + static_cast<int64_t>(start) * a.dx_stride + HP +
               static_cast<int64_t>((kIsC ? a.d.G : 0) + g) * N + n0 + wc;
#pragma unroll
  for (int nt = 0; nt < 2; ++nt)
    if (nt < nts2) {
      const int n = 8 * nt + 2 * tq;
      if (r0 < len) {
        out[static_cast<int64_t>(r0) * a.dx_stride + n] = sum[nt][0];
        out[static_cast<int64_t>(r0) * a.dx_stride + n + 1] = sum[nt][1];
      }
      if (r1 < len) {
        out[static_cast<int64_t>(r1) * a.dx_stride + n] = sum[nt][2];
        out[static_cast<int64_t>(r1) * a.dx_stride + n + 1] = sum[nt][3];
      }
    }
}

// blockIdx: x = column tile + column tiles x row tile, y = chunk x G + group: the blocks that read one
// chunk's rows and states run side by side (L2 reuse).
template <bool kIsC, bool kVec>
__global__ void __launch_bounds__(kThreads, 1) bc_kernel(BcArgs a) {
  extern __shared__ __align__(16) float smem[];
  const int ntiles = (a.d.N + kTile - 1) / kTile;
  const int c = blockIdx.y / a.d.G, g = blockIdx.y % a.d.G, rb = kTile * (blockIdx.x / ntiles);
  if (rb >= a.ct.chunk_len[c]) return;
  bc_block<kIsC, kVec>(a, smem, blockIdx.x % ntiles, rb, c, g);
}

// Stage 1's stages; stage 2's rows (at most kQmax x kSs) and the exchange after them fit in the same space.
constexpr int kSmemFloats = kStages * kStage;
static_assert(kQmax * kSs + kXch <= kSmemFloats, "stage 2 rows and the exchange fit in the stages");

template <bool kIsC>
void launch(const BcArgs& a, bool vec, cudaStream_t s) {
  const int smem = kSmemFloats * static_cast<int>(sizeof(float));
  const unsigned ntiles = static_cast<unsigned>((a.d.N + kTile - 1) / kTile), qtiles = (a.ct.Q + kTile - 1) / kTile;
  auto kernel = vec ? bc_kernel<kIsC, true> : bc_kernel<kIsC, false>;
  allow_smem(kernel, smem);
  kernel<<<dim3(ntiles * qtiles, static_cast<unsigned>(a.ct.count) * a.d.G), kThreads, smem, s>>>(a);
  PCM_CUDA_LAUNCH();
}

}  // namespace

int bc_inter_slots(const SsdDims& d) { return (d.N + 31) / 32; }

bool bc_supported(const SsdDims& d, int32_t Q) {
  return d.P == kP && d.N % 16 == 0 && d.N <= kNmax && Q % 16 == 0 && Q <= kQmax && Q >= 16;
}

void bc_product(const BcArgs& a, cudaStream_t s) {
  // 16-byte copies and loads where every base and stride allows (always, except the tests' odd row strides).
  const bool vec = aligned(a.xbc, 16) && aligned(a.dy, 16) && a.ld % 4 == 0 && aligned(a.S0, 16) &&
                   aligned(a.dS, 16) && a.d.N % 4 == 0 && aligned(a.dcb, 16);
  launch<true>(a, vec, s);
  launch<false>(a, vec, s);
}

}  // namespace pcm::cuda::bwd_tc
