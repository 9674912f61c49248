// dCB and the R sums of the chunked SSD backward with mma.sync TF32 (m16n8k8, fp32 accumulation), one block
// of 8 warps per (chunk, head), as ssd_backward_bc_tc.cu: the chunk's X rows (the B operand every warp
// reads) in shared memory once, TF32; each warp keeps its 16 dY rows' A fragments in registers for all of
// its column blocks. ~90 KB of shared memory at Q = 256: 2 blocks per SM.
#include "kernels/cuda/ssd_backward_dcb_tc.h"

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/mma_tf32.cuh"

namespace pcm::cuda::bwd_tc {
namespace {

using namespace mma_tf32;

constexpr int kP = 64, kQmax = 256, kThreads = 256, kWarps = kThreads / 32;
// X rows padded to 80 floats: the 8 lanes of a 16-byte load phase (2 rows g, 4 column groups t) hit 32 banks.
constexpr int kXs = kP + 16;

__global__ void __launch_bounds__(kThreads, 2) dcb_kernel(DcbArgs a, bool vin) {
  extern __shared__ __align__(16) float smem[];
  const int H = a.d.H, Q = a.ct.Q;
  const int c = blockIdx.x / H, h = blockIdx.x % H, g = h / (H / a.d.G);
  const int start = a.ct.chunk_start[c], len = a.ct.chunk_len[c], rows = (len + 15) & ~15;
  const int64_t chn = static_cast<int64_t>(c) * H + h, HP = static_cast<int64_t>(H) * kP;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gq = lane >> 2, tq = lane & 3;
  float* xs = smem;                // [Q][kXs]: X rows (zeros past len), TF32
  float* css = xs + Q * kXs;       // [Q]
  float* dts = css + Q;            // [Q]
  float* colp = dts + Q;           // [kWarps][Q]: each warp's column sums of R
  const float* xg = a.xbc + static_cast<int64_t>(start) * a.ld + static_cast<int64_t>(h) * kP;
  for (int e0 = tid; e0 < rows * (kP / 4); e0 += 4 * kThreads) {  // 4 loads in flight per thread
    float4 v[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int e = e0 + u * kThreads, r = e / (kP / 4), col = 4 * (e % (kP / 4));
      v[u] = r < len ? load4(xg + static_cast<int64_t>(r) * a.ld + col, vin) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int e = e0 + u * kThreads, r = e / (kP / 4), col = 4 * (e % (kP / 4));
      if (r < rows)
        *reinterpret_cast<float4*>(xs + r * kXs + col) =
            make_float4(round_tf32(v[u].x), round_tf32(v[u].y), round_tf32(v[u].z), round_tf32(v[u].w));
    }
  }
  const float* csc = a.cs + chn * Q;
  for (int j = tid; j < Q; j += kThreads) {
    css[j] = j < len ? csc[j] : 0.0f;
    dts[j] = j < len ? a.dt[static_cast<int64_t>(start + j) * H + h] : 0.0f;
  }
  for (int e = tid; e < kWarps * Q; e += kThreads) colp[e] = 0.0f;
  __syncthreads();
  const float* cb = a.cb + (static_cast<int64_t>(c) * a.d.G + g) * Q * Q;
  float* dcb = a.dcb + chn * Q * Q;
  const float* dyh = a.dy + static_cast<int64_t>(start) * HP + static_cast<int64_t>(h) * kP;
  float* cw = colp + warp * Q;
  // Warp w owns the 16-row tiles w and 15 - w (equal causal work per warp), column blocks of 16 up to the
  // diagonal.
  for (int pass = 0; pass < 2; ++pass) {
    const int mt = pass == 0 ? warp : 15 - warp;
    if (16 * mt >= len) continue;
    const int r0 = 16 * mt + gq, r1 = r0 + 8;
    const int q0 = min(r0, len - 1), q1 = min(r1, len - 1);
    uint32_t fa[kP / 16][8];  // A fragments of dY rows r0, r1 for the 4 k-steps over p
#pragma unroll
    for (int ks = 0; ks < kP / 16; ++ks) {
      const float4 u0 = load4(dyh + static_cast<int64_t>(q0) * HP + 16 * ks + 4 * tq, vin);
      const float4 u1 = load4(dyh + static_cast<int64_t>(q1) * HP + 16 * ks + 4 * tq, vin);
      fa[ks][0] = to_tf32(u0.x);
      fa[ks][1] = to_tf32(u1.x);
      fa[ks][2] = to_tf32(u0.y);
      fa[ks][3] = to_tf32(u1.y);
      fa[ks][4] = to_tf32(u0.z);
      fa[ks][5] = to_tf32(u1.z);
      fa[ks][6] = to_tf32(u0.w);
      fa[ks][7] = to_tf32(u1.w);
    }
    const float cs0 = css[q0], cs1 = css[q1];
    float rs0 = 0.0f, rs1 = 0.0f;  // Σ_j R_ij dt_j of rows r0, r1 (this lane's columns)
    for (int jb = 0; jb <= mt; ++jb) {
      float acc[2][4] = {};
#pragma unroll
      for (int ks = 0; ks < kP / 16; ++ks)
#pragma unroll
        for (int nt = 0; nt < 2; ++nt) {
          const float4 b = *reinterpret_cast<const float4*>(xs + (16 * jb + 8 * nt + gq) * kXs + 16 * ks + 4 * tq);
          mma(acc[nt], fa[ks][0], fa[ks][1], fa[ks][2], fa[ks][3], bits(b.x), bits(b.y));
          mma(acc[nt], fa[ks][4], fa[ks][5], fa[ks][6], fa[ks][7], bits(b.z), bits(b.w));
        }
#pragma unroll
      for (int nt = 0; nt < 2; ++nt) {
        const int j = 16 * jb + 8 * nt + 2 * tq;
        float R[4];
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int r = e < 2 ? r0 : r1, jj = j + (e & 1);
          const bool valid = r < len && jj <= r;  // exp of a positive exponent (jj > r) is selected away
          const float gL = valid ? acc[nt][e] * __expf((e < 2 ? cs0 : cs1) - css[jj]) : 0.0f;
          R[e] = valid ? gL * __ldg(cb + static_cast<int64_t>(r) * Q + jj) : 0.0f;
          if (r < len) dcb[static_cast<int64_t>(r) * Q + jj] = gL * dts[jj];
        }
        rs0 += R[0] * dts[j] + R[1] * dts[j + 1];
        rs1 += R[2] * dts[j] + R[3] * dts[j + 1];
        float c0 = R[0] + R[2], c1 = R[1] + R[3];  // columns j, j + 1 over this warp's 16 rows
#pragma unroll
        for (int o = 4; o < 32; o <<= 1) {
          c0 += __shfl_xor_sync(0xffffffffu, c0, o);
          c1 += __shfl_xor_sync(0xffffffffu, c1, o);
        }
        if (gq == 0) {
          cw[j] += c0;
          cw[j + 1] += c1;
        }
      }
    }
    rs0 += __shfl_xor_sync(0xffffffffu, rs0, 1);
    rs0 += __shfl_xor_sync(0xffffffffu, rs0, 2);
    rs1 += __shfl_xor_sync(0xffffffffu, rs1, 1);
    rs1 += __shfl_xor_sync(0xffffffffu, rs1, 2);
    if (tq == 0) {
      float* row = a.row + chn * a.qt * Q;
      for (int half = 0; half < 2; ++half) {
        const int r = half ? r1 : r0;
        if (r >= len) continue;
        row[r] = half ? rs1 : rs0;
        for (int jt = 1; jt <= r / 64; ++jt) row[jt * Q + r] = 0.0f;
      }
    }
  }
  __syncthreads();
  float* col = a.col + chn * a.qt * Q;
  for (int j = tid; j < len; j += kThreads) {  // the warps' column sums in a fixed order
    float total = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) total += colp[w * Q + j];
    col[(j / 64) * Q + j] = total;
    for (int it = j / 64 + 1; it * 64 < len; ++it) col[it * Q + j] = 0.0f;
  }
}

}  // namespace

bool dcb_supported(const SsdDims& d, int32_t Q) { return d.P == kP && Q % 16 == 0 && Q <= kQmax && Q >= 16; }

void dcb_product(const DcbArgs& a, cudaStream_t s) {
  const int smem = (a.ct.Q * kXs + (2 + kWarps) * a.ct.Q) * static_cast<int>(sizeof(float));
  const bool vin = aligned16(a.xbc) && aligned16(a.dy) && a.ld % 4 == 0;
  allow_smem(dcb_kernel, smem);
  dcb_kernel<<<static_cast<unsigned>(a.ct.count) * a.d.H, kThreads, smem, s>>>(a, vin);
  PCM_CUDA_LAUNCH();
}

}  // namespace pcm::cuda::bwd_tc
