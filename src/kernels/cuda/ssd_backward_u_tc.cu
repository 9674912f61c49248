// The chunk-local state adjoint U = (diag(e^cs) dY)ᵀ C with mma.sync TF32 (m16n8k8, fp32 accumulation), one
// block of 8 warps per (chunk, head): the chunk's dY and C rows pass through shared memory 64 rows at a time,
// two stages of cp.async copies (~100 KB: 2 blocks per SM), so that the next pass's rows land while this one
// multiplies (one fill of all 256 rows took 200 KB, 1 block per SM, loads and products in turn: 464 µs a
// layer at 1.3B). The stages stay as copied: dY fragments are scaled by e^cs and rounded to TF32 in registers; C
// comes transposed per chunk and rounded (the backward writes it once per layer), so a B fragment is one 16-byte
// load; one barrier per pass, no pass over the stage. Warp w owns p rows 16 (w % 4) and half of the n columns (w / 4).
#include "kernels/cuda/cp_async.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/mma_tf32.cuh"
#include "kernels/cuda/ssd_backward_u_tc.h"
#include "kernels/cuda/ssd_state_blocks.cuh"

namespace pcm::cuda::bwd_tc {
namespace {

using namespace mma_tf32;

constexpr int kP = 64, kNmax = 128, kQmax = 256, kThreads = 256, kSp = kP + 2, kNtMax = kNmax / 16, kPass = 64;

// Floats of one pass's stage: dY rows [kPass][kSp], Cᵀ rows [N][kPass] (16-byte pieces of i XOR 4 (n % 2): the
// 8 lanes of a load phase, rows n and n + 1, hit 32 banks), cs of the rows [kPass].
__host__ __device__ constexpr int stage_floats(int N) { return kPass * (kSp + N) + kPass; }

template <bool kVec>
__global__ void __launch_bounds__(kThreads, 2) u_kernel(UArgs a) {
  extern __shared__ __align__(16) float smem[];
  const int H = a.d.H, N = a.d.N, Q = a.ct.Q, nts = N / 16, sf = stage_floats(N);
  const int c = blockIdx.x / H, h = blockIdx.x % H, g = h / (H / a.d.G);
  const int start = a.ct.chunk_start[c], len = a.ct.chunk_len[c], rows = (len + 15) & ~15;
  const int64_t chn = static_cast<int64_t>(c) * H + h, HP = static_cast<int64_t>(H) * kP;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gq = lane >> 2, tq = lane & 3;
  const float* dyh = a.dy + static_cast<int64_t>(start) * HP + static_cast<int64_t>(h) * kP;
  const float* ctg = a.c_t + (static_cast<int64_t>(c) * a.d.G + g) * N * Q;
  const float* csc = a.cs + chn * Q;
  const int y4 = kP / 4, passes = (rows + kPass - 1) / kPass;
  // Pass ps (rows i0 = 64 ps ..) into stage ps % 2 with cp.async (0 past len), kept in flight while the
  // previous pass multiplies.
  auto issue = [&](int ps) {
    if (ps < passes) {
      float* ys = smem + (ps & 1) * sf;
      float* cts = ys + kPass * kSp;
      float* csv = cts + N * kPass;
      const int i0 = kPass * ps;
      for (int e = tid; e < kPass * y4; e += kThreads) {
        const int r = e / y4, k = e % y4, i = min(i0 + r, len - 1);  // strides even: 8-byte aligned pairs
        cp_async::copy4f<kVec ? 8 : 4>(ys + r * kSp + 4 * k, dyh + static_cast<int64_t>(i) * HP + 4 * k,
                                       i0 + r < len);
      }
      for (int e = tid; e < N * (kPass / 4); e += kThreads) {  // row n of Cᵀ, piece q: rows i0 + 4q .. + 3
        const int n = e / (kPass / 4), q = e % (kPass / 4), i = i0 + 4 * q;
        cp_async::copy16(cts + n * kPass + 4 * (q ^ (4 * (n & 1))), ctg + static_cast<int64_t>(n) * Q + min(i, Q - 4),
                         i < Q);
      }
      if (tid < kPass) cp_async::copy4(csv + tid, csc + min(i0 + tid, len - 1), i0 + tid < len);
    }
    cp_async::commit();
  };
  // A[p][i] = ys[i][p]: lanes take k = i in the order 4t..4t+3 as in step16; rows 4t apart are 8t banks apart
  // (kSp = 2 mod 8), so an A load (8 rows p x 4 t) hits 32 banks; a B fragment is the 16-byte piece of rows
  // 4t..4t+3 in Cᵀ's row n.
  const int p0 = 16 * (warp & 3), n0 = (warp >> 2) * (N / 2);
  float acc[kNtMax][4];
#pragma unroll
  for (int nt = 0; nt < kNtMax; ++nt) acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0.0f;
  issue(0);
  for (int ps = 0; ps < passes; ++ps) {
    cp_async::wait_group<0>();  // pass ps (this thread's copies)
    float* ys = smem + (ps & 1) * sf;
    float* cts = ys + kPass * kSp;
    float* csv = cts + N * kPass;
    if (tid < kPass) csv[tid] = __expf(csv[tid]);  // the row scales e^cs_i, by the thread that copied cs_i
    __syncthreads();  // pass ps landed; every warp is done with pass ps - 1's stage
    issue(ps + 1);
    const int prow = min(kPass, rows - kPass * ps);
    for (int k0 = 0; k0 < prow; k0 += 16) {  // e^cs_i dY[i] rounded to TF32 in registers (C arrives rounded)
      const float* ya = ys + (k0 + 4 * tq) * kSp + p0 + gq;
      const float* ea = csv + k0 + 4 * tq;
      uint32_t f0[4], f1[4];  // rows p0 + g and p0 + g + 8 of A = (e^cs dY)ᵀ, k = i in the order 4t..4t+3
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        f0[u] = rna_bits(ea[u] * ya[u * kSp]);
        f1[u] = rna_bits(ea[u] * ya[u * kSp + 8]);
      }
      const int q = (k0 >> 2) + tq;  // piece of rows k0 + 4t .. + 3
      float4 bv[kNtMax];
#pragma unroll
      for (int nt = 0; nt < kNtMax; ++nt)  // the k-halves in two sweeps, as step16
        if (nt < nts) {
          const int n = n0 + 8 * nt + gq;
          bv[nt] = *reinterpret_cast<const float4*>(cts + n * kPass + 4 * (q ^ (4 * (n & 1))));
          mma(acc[nt], f0[0], f1[0], f0[1], f1[1], bits(bv[nt].x), bits(bv[nt].y));
        }
#pragma unroll
      for (int nt = 0; nt < kNtMax; ++nt)
        if (nt < nts) mma(acc[nt], f0[2], f1[2], f0[3], f1[3], bits(bv[nt].z), bits(bv[nt].w));
    }
  }
  float* out = a.U + chn * kP * N;  // in 4 x 4 blocks (ssd_state_blocks.cuh): a warp's stores cover whole blocks
#pragma unroll
  for (int nt = 0; nt < kNtMax; ++nt)
    if (nt < nts) {
      const int n = n0 + 8 * nt + 2 * tq, p = p0 + gq;
      out[state_blocks::at(p, n, N)] = acc[nt][0];
      out[state_blocks::at(p, n + 1, N)] = acc[nt][1];
      out[state_blocks::at(p + 8, n, N)] = acc[nt][2];
      out[state_blocks::at(p + 8, n + 1, N)] = acc[nt][3];
    }
}

}  // namespace

bool u_supported(const SsdDims& d, int32_t Q) {
  return d.P == kP && d.N % 16 == 0 && d.N <= kNmax && Q % 16 == 0 && Q <= kQmax && Q >= 16;
}

void u_product(const UArgs& a, cudaStream_t s) {
  const int smem = 2 * stage_floats(a.d.N) * static_cast<int>(sizeof(float));
  PCM_CHECK(aligned(a.c_t, 16), "SSD backward U: the transposed C must be 16-byte aligned");
  const bool vec = aligned(a.dy, 16);  // 8-byte copies of dY
  auto kernel = vec ? u_kernel<true> : u_kernel<false>;
  allow_smem(kernel, smem);
  kernel<<<static_cast<unsigned>(a.ct.count) * a.d.H, kThreads, smem, s>>>(a);
  PCM_CUDA_LAUNCH();
}

}  // namespace pcm::cuda::bwd_tc
