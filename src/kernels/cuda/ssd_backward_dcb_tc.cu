// Σ_h dCB_h over a group's heads and the per-head R sums of the chunked SSD backward with mma.sync TF32 (m16n8k8, fp32
// accumulation). One block of 8 warps per (64x64 tile pair j-tile <= i-tile, chunk, group, split of the group's heads);
// warp w owns the tile's rows 16 (w % 4) .. + 15 and columns 32 (w / 4) .. + 31, and keeps the sum over the heads in
// registers. Why: dB and dC need only the head sum (B, C are per group), so the old per-head dCB (chunks x H x Q x Q
// floats, 0.5 GB at 1.3B 4x2048) never goes to device memory, and the per-head products of dB/dC's second stage become
// one per group (ssd_backward_bc_tc.cu). Each head's dY and X tiles come through cp.async stages in shared memory
// as copied (fp32), fragments from there (dY rows as A, X rows as B: both row-major in p), rounded to TF32 in
// registers (no pass over the stage between its landing and its barrier).
#include "kernels/cuda/cp_async.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/mma_tf32.cuh"
#include "kernels/cuda/ssd_backward_dcb_tc.h"

namespace pcm::cuda::bwd_tc {
namespace {

using namespace mma_tf32;

constexpr int kP = 64, kQmax = 256, kTile = 64, kThreads = 256, kRw = 4, kHs = 8;
constexpr int kRs = kP + 16;  // row stride of the staged dY / X rows: 16-byte loads of rows g, g + 1 hit 32 banks
constexpr int kBuf = 2 * kTile * kRs;  // floats of one head's stage: dY rows of the i-tile, X rows of the j-tile

// Per head k of the split, double buffered: the cp.async copies of head k + 1 land while head k multiplies.
template <bool kVec>
__global__ void __launch_bounds__(kThreads, 2) dcb_kernel(DcbArgs a, int splits, int hs) {
  extern __shared__ __align__(16) float smem[];
  const int H = a.d.H, G = a.d.G, Q = a.ct.Q, hpg = H / G;
  int it = 0;
  while ((it + 1) * (it + 2) / 2 <= static_cast<int>(blockIdx.x)) ++it;
  const int jt = blockIdx.x - it * (it + 1) / 2, i0 = kTile * it, j0 = kTile * jt;
  const int c = blockIdx.y / G, g = blockIdx.y % G, sp = blockIdx.z;
  const int start = a.ct.chunk_start[c], len = a.ct.chunk_len[c];
  const int h0 = g * hpg + sp * hs, nh = min(hs, hpg - sp * hs);
  if (i0 >= len || nh <= 0) return;
  const int64_t HP = static_cast<int64_t>(H) * kP;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gq = lane >> 2, tq = lane & 3;
  // Off the diagonal tile csi, csj hold e^(cs_i − cs_i0), e^(cs_i0 − cs_j) instead: no exp per head and lane.
  float* csi = smem + 2 * kBuf;           // [hs][64]: cs of the tile's rows i (0 past len)
  float* csj = csi + hs * kTile;          // [hs][64]: cs of the tile's columns j
  float* dtj = csj + hs * kTile;          // [hs][64]: dt of the columns
  float* colp = dtj + hs * kTile;         // [hs][kRw][64]: each row warp's column sums of R per head
  float* rowp = colp + hs * kRw * kTile;  // [hs][2][64]: each column half's row sums of R dt per head
  // This thread's copies: rows rr = tid / 16 + 16 u of both tiles, 4 columns at 4 (tid % 16).
  const int c4 = 4 * (tid & 15);
  const float* dyg = a.dy + static_cast<int64_t>(start) * HP + c4;
  const float* xg = a.xbc + static_cast<int64_t>(start) * a.ld + c4;
  auto issue = [&](int k) {
    if (k < nh) {
      float* ys = smem + (k & 1) * kBuf;
      float* xs = ys + kTile * kRs;
      const int64_t hp = static_cast<int64_t>(h0 + k) * kP;
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const int rr = (tid >> 4) + 16 * u, i = i0 + rr, j = j0 + rr;
        cp_async::copy4f<kVec ? 16 : 4>(ys + rr * kRs + c4, dyg + static_cast<int64_t>(min(i, len - 1)) * HP + hp,
                                        i < len);
        cp_async::copy4f<kVec ? 16 : 4>(xs + rr * kRs + c4, xg + static_cast<int64_t>(min(j, len - 1)) * a.ld + hp,
                                        j < len);
      }
    }
    cp_async::commit();
  };
  issue(0);
  const bool diag = it == jt;  // block-uniform
  for (int e = tid; e < nh * kTile; e += kThreads) {
    const int k = e / kTile, r = e % kTile, h = h0 + k, i = i0 + r, j = j0 + r;
    const float* csh = a.cs + (static_cast<int64_t>(c) * H + h) * Q;
    if (diag) {
      csi[e] = i < len ? csh[i] : 0.0f;
      csj[e] = j < len ? csh[j] : 0.0f;
    } else {  // every j < i0 <= i: e^(cs_i − cs_j) = e^(cs_i − cs_i0) e^(cs_i0 − cs_j), both <= 1 (0 past len)
      csi[e] = i < len ? __expf(csh[i] - csh[i0]) : 0.0f;
      csj[e] = j < len ? __expf(csh[i0] - csh[j]) : 0.0f;
    }
    dtj[e] = j < len ? a.dt[static_cast<int64_t>(start + j) * H + h] : 0.0f;
  }
  for (int e = tid; e < nh * (kRw + 2) * kTile; e += kThreads) colp[e] = 0.0f;  // and rowp
  const int wr = warp % kRw, wc = 32 * (warp / kRw);                            // row tile, first column of this warp
  const int ir0 = 16 * wr + gq, ir1 = ir0 + 8;                                  // tile rows of this lane
  const int r0 = i0 + ir0, r1 = i0 + ir1;                                       // chunk rows
  const int q0 = min(r0, len - 1), q1 = min(r1, len - 1);
  // CB at this lane's accumulator positions (clamped into the causal, written part; selected away outside).
  const float* cbg = a.cb + (static_cast<int64_t>(c) * G + g) * Q * Q;
  float cbv[4][4];
#pragma unroll
  for (int nt = 0; nt < 4; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int i = e < 2 ? q0 : q1, j = min(j0 + wc + 8 * nt + 2 * tq + (e & 1), i);
      cbv[nt][e] = __ldg(cbg + static_cast<int64_t>(i) * Q + j);
    }
  // On the diagonal tile, column blocks past the warp's last row hold only j > i: skipped (all zero).
  const int nt_end = it == jt ? min(4, 2 * wr + 2 - wc / 8) : 4;
  float sum[4][4] = {};
  for (int k = 0; k < nh; ++k) {
    cp_async::wait_group<0>();
    __syncthreads();  // head k's stage complete (and the scalars, first time); head k - 1's stage free
    issue(k + 1);
    const float* ys = smem + (k & 1) * kBuf;
    const float* xs = ys + kTile * kRs;
    // acc[nt] = dY Xᵀ over p for the warp's 16 rows x column block nt (k order 4t..4t+3 for A and B alike).
    float acc[4][4] = {};
#pragma unroll
    for (int ks = 0; ks < kP / 16; ++ks) {
      const float4 u0 = *reinterpret_cast<const float4*>(ys + ir0 * kRs + 16 * ks + 4 * tq);
      const float4 u1 = *reinterpret_cast<const float4*>(ys + ir1 * kRs + 16 * ks + 4 * tq);
      const uint32_t a0[4] = {rna_bits(u0.x), rna_bits(u0.y), rna_bits(u0.z), rna_bits(u0.w)};
      const uint32_t a1[4] = {rna_bits(u1.x), rna_bits(u1.y), rna_bits(u1.z), rna_bits(u1.w)};
      float4 b[4];
#pragma unroll
      for (int nt = 0; nt < 4; ++nt) {  // the k-halves in two sweeps: no mma waits on the one just issued
        if (nt >= nt_end) continue;
        b[nt] = *reinterpret_cast<const float4*>(xs + (wc + 8 * nt + gq) * kRs + 16 * ks + 4 * tq);
        mma(acc[nt], a0[0], a1[0], a0[1], a1[1], rna_bits(b[nt].x), rna_bits(b[nt].y));
      }
#pragma unroll
      for (int nt = 0; nt < 4; ++nt)
        if (nt < nt_end) mma(acc[nt], a0[2], a1[2], a0[3], a1[3], rna_bits(b[nt].z), rna_bits(b[nt].w));
    }
    const float* ci = csi + k * kTile;
    const float* cj = csj + k * kTile;
    const float* dj = dtj + k * kTile;
    const float cs0 = ci[ir0], cs1 = ci[ir1];  // off the diagonal: e^(cs_r − cs_i0)
    float rs0 = 0.0f, rs1 = 0.0f;  // Σ_j R_ij dt_j of rows r0, r1 (this lane's columns)
    float cv[8];                   // column sums of R over rows r0, r1: columns jr, jr + 1 of block nt at 2 nt, 2 nt + 1
#pragma unroll
    for (int nt = 0; nt < 4; ++nt) {
      cv[2 * nt] = cv[2 * nt + 1] = 0.0f;
      if (nt >= nt_end) continue;
      const int jr = wc + 8 * nt + 2 * tq;  // tile column of acc[nt][0], acc[nt][2]
      float R[4];
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = e < 2 ? r0 : r1, jc = jr + (e & 1), j = j0 + jc;
        float gL;
        if (diag) {
          const bool valid = r < len && j <= r;  // exp of a positive exponent (j > r) is selected away
          gL = valid ? acc[nt][e] * __expf((e < 2 ? cs0 : cs1) - cj[jc]) : 0.0f;
        } else {  // the factors' product (rows past len: 0 and 0 dY rows)
          gL = acc[nt][e] * (e < 2 ? cs0 : cs1) * cj[jc];
        }
        sum[nt][e] += gL * dj[jc];
        R[e] = gL * cbv[nt][e];
      }
      rs0 += R[0] * dj[jr] + R[1] * dj[jr + 1];
      rs1 += R[2] * dj[jr] + R[3] * dj[jr + 1];
      cv[2 * nt] = R[0] + R[2];
      cv[2 * nt + 1] = R[1] + R[3];
    }
    // The 8 column sums over the 8 lanes of one t (g = 0..7), halved per round (lane bits 4, 3, 2): each lane ends
    // with the whole sum of value g, 7 shuffles instead of 24.
#pragma unroll
    for (int o = 16, m = 4; o >= 4; o >>= 1, m >>= 1) {
      const bool hi = lane & o;
#pragma unroll
      for (int q = 0; q < m; ++q) {
        const float send = hi ? cv[q] : cv[q + m], keep = hi ? cv[q + m] : cv[q];
        cv[q] = keep + __shfl_xor_sync(0xffffffffu, send, o);
      }
    }
    colp[(k * kRw + wr) * kTile + wc + 8 * (gq >> 1) + 2 * tq + (gq & 1)] = cv[0];
    rs0 += __shfl_xor_sync(0xffffffffu, rs0, 1);
    rs0 += __shfl_xor_sync(0xffffffffu, rs0, 2);
    rs1 += __shfl_xor_sync(0xffffffffu, rs1, 1);
    rs1 += __shfl_xor_sync(0xffffffffu, rs1, 2);
    if (tq == 0) {
      float* rw = rowp + (k * 2 + wc / 32) * kTile;
      rw[ir0] = rs0;
      rw[ir1] = rs1;
    }
  }
  // This split's Σ_h dCB_h for the tile's rows < len (every column of the tile; 0 for j > i).
  float* dcb = a.dcb + ((static_cast<int64_t>(c) * G + g) * splits + sp) * Q * Q;
#pragma unroll
  for (int nt = 0; nt < 4; ++nt) {
    const int j = j0 + wc + 8 * nt + 2 * tq;
    if (j >= Q) continue;  // Q < 64: the tile is wider than the chunk (Q % 16 == 0: j + 1 < Q too)
    if (r0 < len) {
      dcb[static_cast<int64_t>(r0) * Q + j] = sum[nt][0];
      dcb[static_cast<int64_t>(r0) * Q + j + 1] = sum[nt][1];
    }
    if (r1 < len) {
      dcb[static_cast<int64_t>(r1) * Q + j] = sum[nt][2];
      dcb[static_cast<int64_t>(r1) * Q + j + 1] = sum[nt][3];
    }
  }
  __syncthreads();
  for (int e = tid; e < nh * kTile; e += kThreads) {  // the warps' partial sums in a fixed order
    const int k = e / kTile, q = e % kTile;
    const int64_t slot = (static_cast<int64_t>(c) * H + h0 + k) * a.qt;
    if (j0 + q < len) {
      float total = 0.0f;
#pragma unroll
      for (int w = 0; w < kRw; ++w) total += colp[(k * kRw + w) * kTile + q];
      a.col[(slot + it) * Q + j0 + q] = total;
    }
    if (i0 + q < len) a.row[(slot + jt) * Q + i0 + q] = rowp[(k * 2) * kTile + q] + rowp[(k * 2 + 1) * kTile + q];
  }
}

// dcb_sum = Σ_split dcb[split] (fixed order) and dcb_sum_t = its transpose, per 32x32 tile (i-tile blockIdx.x /
// j-tile blockIdx.y, j-tile <= i-tile) of chunk x group blockIdx.z; 0 past len and past Q.
constexpr int kFt = 32;
__global__ void __launch_bounds__(kFt * 8) fold_kernel(const float* dcb, float* sum, float* sum_t, int splits, int G,
                                                        ChunkTable ct) {
  __shared__ float tile[kFt][kFt + 1];
  const int it = blockIdx.x, jt = blockIdx.y, cg = blockIdx.z, c = cg / G, Q = ct.Q, len = ct.chunk_len[c];
  const int i0 = kFt * it, j0 = kFt * jt;
  if (jt > it || i0 >= len) return;
  const int64_t QQ = static_cast<int64_t>(Q) * Q;
  const float* src = dcb + static_cast<int64_t>(cg) * splits * QQ;
  const int tx = threadIdx.x % kFt, ty = threadIdx.x / kFt, j = j0 + tx;
  for (int r = ty; r < kFt; r += 8) {
    const int i = i0 + r;
    float v = 0.0f;
    if (i < len && j < Q)
      for (int sp = 0; sp < splits; ++sp) v += src[sp * QQ + static_cast<int64_t>(i) * Q + j];
    tile[r][tx] = v;
    if (i < Q && j < Q) sum[cg * QQ + static_cast<int64_t>(i) * Q + j] = v;
  }
  __syncthreads();
  for (int r = ty; r < kFt; r += 8) {  // row j0 + r of the transpose, columns i0 + tx
    const int jj = j0 + r, ii = i0 + tx;
    if (jj < Q && ii < Q) sum_t[cg * QQ + static_cast<int64_t>(jj) * Q + ii] = tile[tx][r];
  }
}

int smem_bytes(int hs) { return (2 * kBuf + hs * kTile * (3 + kRw + 2)) * static_cast<int>(sizeof(float)); }

}  // namespace

bool dcb_supported(const SsdDims& d, int32_t Q) { return d.P == kP && Q % 16 == 0 && Q <= kQmax && Q >= 16; }

int dcb_splits(const SsdDims& d) {
  const int hpg = d.H / d.G;
  return (hpg + kHs - 1) / kHs;
}

int64_t dcb_floats(int64_t chunks, int32_t Q, const SsdDims& d) {
  return chunks * d.G * (dcb_splits(d) + 2) * static_cast<int64_t>(Q) * Q;
}

const float* dcb_sum(const float* dcb, int64_t chunks, int32_t Q, const SsdDims& d) {
  return dcb + chunks * d.G * dcb_splits(d) * static_cast<int64_t>(Q) * Q;
}

const float* dcb_sum_t(const float* dcb, int64_t chunks, int32_t Q, const SsdDims& d) {
  return dcb_sum(dcb, chunks, Q, d) + chunks * d.G * static_cast<int64_t>(Q) * Q;
}

void dcb_product(const DcbArgs& a, cudaStream_t s) {
  const int splits = dcb_splits(a.d), hpg = a.d.H / a.d.G, hs = (hpg + splits - 1) / splits;
  const int smem = smem_bytes(hs), qt = (a.ct.Q + kTile - 1) / kTile;
  const bool vin = aligned(a.xbc, 16) && aligned(a.dy, 16) && a.ld % 4 == 0;
  auto kernel = vin ? dcb_kernel<true> : dcb_kernel<false>;
  allow_smem(kernel, smem);
  const dim3 grid(qt * (qt + 1) / 2, static_cast<unsigned>(a.ct.count) * a.d.G, splits);
  kernel<<<grid, kThreads, smem, s>>>(a, splits, hs);
  PCM_CUDA_LAUNCH();
  const unsigned ft = static_cast<unsigned>((a.ct.Q + kFt - 1) / kFt);
  float* sum = const_cast<float*>(dcb_sum(a.dcb, a.ct.count, a.ct.Q, a.d));
  float* sum_t = const_cast<float*>(dcb_sum_t(a.dcb, a.ct.count, a.ct.Q, a.d));
  fold_kernel<<<dim3(ft, ft, static_cast<unsigned>(a.ct.count) * a.d.G), kFt * 8, 0, s>>>(a.dcb, sum, sum_t, splits,
                                                                                        a.d.G, a.ct);
  PCM_CUDA_LAUNCH();
}

}  // namespace pcm::cuda::bwd_tc
