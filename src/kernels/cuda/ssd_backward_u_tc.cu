// The chunk-local state adjoint U = (diag(e^cs) dY)ᵀ C with mma.sync TF32 (m16n8k8, fp32 accumulation), one
// block of 8 warps per (chunk, head), as the prefill's chunk states: the chunk's e^cs-scaled dY rows and C
// rows in shared memory (TF32), both operands read from there, in passes of up to 128 rows: ~100 KB of shared
// memory, so that 2 blocks per SM overlap one's loads with the other's products (one pass over all 256 rows
// took 200 KB: 1 block per SM, loads and products in turn). Warp w owns p rows 16 (w % 4) and half of the n
// columns (w / 4).
#include "kernels/cuda/ssd_backward_u_tc.h"

#include <algorithm>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/mma_tf32.cuh"

namespace pcm::cuda::bwd_tc {
namespace {

using namespace mma_tf32;

constexpr int kP = 64, kNmax = 128, kQmax = 256, kThreads = 256, kSp = kP + 2, kNtMax = kNmax / 16, kPass = 128;

__global__ void __launch_bounds__(kThreads, 2) u_kernel(UArgs a, bool vin) {
  extern __shared__ __align__(16) float smem[];
  const int H = a.d.H, N = a.d.N, Q = a.ct.Q, sn = N + 2, nts = N / 16;
  const int c = blockIdx.x / H, h = blockIdx.x % H, g = h / (H / a.d.G);
  const int start = a.ct.chunk_start[c], len = a.ct.chunk_len[c], rows = (len + 15) & ~15;
  const int64_t chn = static_cast<int64_t>(c) * H + h, HP = static_cast<int64_t>(H) * kP;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gq = lane >> 2, tq = lane & 3;
  const int pass_rows = min(Q, kPass);
  float* ys = smem;                   // [pass_rows][kSp]: e^cs_i dY[i, p] (zeros past len)
  float* cs_ = ys + pass_rows * kSp;  // [pass_rows][sn]: C rows (zeros past len)
  const float* dyh = a.dy + static_cast<int64_t>(start) * HP + static_cast<int64_t>(h) * kP;
  const float* cg = a.xbc + static_cast<int64_t>(start) * a.ld + HP + static_cast<int64_t>(a.d.G + g) * N;
  const float* csc = a.cs + chn * Q;
  const int y4 = kP / 4, n4 = N / 4;
  // A[p][i] = ys[i][p]: lanes take k = i in the order 4t..4t+3 as in step16; rows 4t apart are 8t banks apart
  // (kSp = 2 mod 8), so an A load (8 rows p x 4 t) hits 32 banks, as the B loads (sn = 2 mod 8).
  const int p0 = 16 * (warp & 3), n0 = (warp >> 2) * (N / 2);
  float acc[kNtMax][4];
#pragma unroll
  for (int nt = 0; nt < kNtMax; ++nt) acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0.0f;
  for (int i0 = 0; i0 < rows; i0 += pass_rows) {
    const int prow = min(pass_rows, rows - i0), items = prow * (y4 + n4);
    if (i0 > 0) __syncthreads();  // the previous pass's products are done with ys, cs_
    for (int e0 = tid; e0 < items; e0 += 4 * kThreads) {  // 4 loads in flight per thread
      float4 v[4];
      float sc[4];
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const int e = e0 + u * kThreads, r = i0 + e / (y4 + n4), k = e % (y4 + n4);
        v[u] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        sc[u] = 1.0f;
        if (e < items && r < len) {
          if (k < y4) {
            v[u] = load4(dyh + static_cast<int64_t>(r) * HP + 4 * k, vin);
            sc[u] = __expf(csc[r]);
          } else {
            v[u] = load4(cg + static_cast<int64_t>(r) * a.ld + 4 * (k - y4), vin);
          }
        }
      }
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const int e = e0 + u * kThreads, r = e / (y4 + n4), k = e % (y4 + n4);
        if (e < items) {
          float* p = k < y4 ? ys + r * kSp + 4 * k : cs_ + r * sn + 4 * (k - y4);  // strides even: 8-byte pairs
          const float s = sc[u];
          *reinterpret_cast<float2*>(p) = make_float2(round_tf32(s * v[u].x), round_tf32(s * v[u].y));
          *reinterpret_cast<float2*>(p + 2) = make_float2(round_tf32(s * v[u].z), round_tf32(s * v[u].w));
        }
      }
    }
    __syncthreads();
    for (int k0 = 0; k0 < prow; k0 += 16) {
      const float* ya = ys + (k0 + 4 * tq) * kSp + p0 + gq;
      const uint32_t f0[4] = {bits(ya[0]), bits(ya[kSp]), bits(ya[2 * kSp]), bits(ya[3 * kSp])};  // row p0 + g
      const uint32_t f1[4] = {bits(ya[8]), bits(ya[kSp + 8]), bits(ya[2 * kSp + 8]), bits(ya[3 * kSp + 8])};
      step16<kNtMax>(acc, f0, f1, cs_ + (k0 + 4 * tq) * sn + n0 + gq, sn, nts);
    }
  }
  float* out = a.U + chn * kP * N;
#pragma unroll
  for (int nt = 0; nt < kNtMax; ++nt)
    if (nt < nts) {
      const int n = n0 + 8 * nt + 2 * tq, p = p0 + gq;
      out[p * N + n] = acc[nt][0];
      out[p * N + n + 1] = acc[nt][1];
      out[(p + 8) * N + n] = acc[nt][2];
      out[(p + 8) * N + n + 1] = acc[nt][3];
    }
}

}  // namespace

bool u_supported(const SsdDims& d, int32_t Q) {
  return d.P == kP && d.N % 16 == 0 && d.N <= kNmax && Q % 16 == 0 && Q <= kQmax && Q >= 16;
}

void u_product(const UArgs& a, cudaStream_t s) {
  const int smem = std::min(a.ct.Q, kPass) * (kSp + a.d.N + 2) * static_cast<int>(sizeof(float));
  const bool vin = aligned16(a.xbc) && aligned16(a.dy) && a.ld % 4 == 0;
  allow_smem(u_kernel, smem);
  u_kernel<<<static_cast<unsigned>(a.ct.count) * a.d.H, kThreads, smem, s>>>(a, vin);
  PCM_CUDA_LAUNCH();
}

}  // namespace pcm::cuda::bwd_tc
