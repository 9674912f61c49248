// dX of the chunked SSD backward with mma.sync TF32 (m16n8k8, fp32 accumulation), one block of 8 warps per
// (chunk, head): the chunk's dY rows and dS (the B operands every warp reads) in shared memory once, TF32, both
// by cp.async (dS arrives rounded from the state-adjoint pass; it lands before stage 1, the dY rows during the
// first pass's stage 1, which needs only dS, and are transposed in 4 x 4 blocks and rounded by their copying
// thread); B rows (from the backward's TF32 copy) and C·Bᵀ columns (rows of its transposed copy; private to a
// warp's rows) straight into fragments. dS comes in 4 x 4 blocks (ssd_state_blocks.cuh), each transposed in place so
// that stage 1's B fragment dS[p][4t..4t+3] is one 16-byte load, as is stage 2's dY fragment. ~104 KB of shared
// memory at Q = 256, N = 128: 2 blocks per SM. The bf16 form (bf16 training) keeps every load and layout and rounds
// the same values to bf16 instead: each transposed piece becomes two bf16 pairs in its first 8 bytes, and one
// m16n8k16 replaces each pair of m16n8k8 (half the mma instructions).
#include "kernels/cuda/cp_async.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/mma_bf16.cuh"
#include "kernels/cuda/mma_tf32.cuh"
#include "kernels/cuda/ssd_backward_dx_tc.h"

namespace pcm::cuda::bwd_tc {
namespace {

using namespace mma_tf32;

constexpr int kP = 64, kNmax = 128, kQmax = 256, kThreads = 256, kPt = kP / 8;
// dY rows in shared memory as 4 x 4 blocks [i / 4][p / 4][p % 4][i % 4]: stage 2's B fragment (k = i 4t..4t+3, column
// p) is then one 16-byte load instead of four scalar ones. Row-quad stride 8 mod 32 floats: the 8 lanes of a 16-byte
// load phase (t = 0..3, g = 0, 1) hit 32 banks.
constexpr int kYq = 16 * (kP / 4) + 8;
__host__ __device__ constexpr int ys_floats(int Q) { return (Q / 4) * kYq; }
// dS's p quads in shared memory kDq floats apart whatever N (N / 4 blocks of 16 each): compile-time fragment offsets.
constexpr int kDq = 4 * kNmax;

// 4 x 4 block e of the dY rows (row quad a, column quad pq): 8 consecutive threads take 4 row quads x 2 column quads,
// so that a warp's copies read whole 32-byte sectors and the in-place transpose hits the banks at most 2 ways.
__device__ __forceinline__ int yblock_a(int e) { return 4 * (e >> 6) + ((e >> 1) & 3); }
__device__ __forceinline__ int yblock_pq(int e) { return 2 * ((e >> 3) & 7) + (e & 1); }
__device__ __forceinline__ int yblock_at(int e) { return yblock_a(e) * kYq + 16 * yblock_pq(e); }

// 2 consecutive floats; kVec: 8-byte aligned (one load).
template <bool kVec>
__device__ __forceinline__ float2 load2(const float* p) {
  if constexpr (kVec) return __ldg(reinterpret_cast<const float2*>(p));
  return make_float2(__ldg(p), __ldg(p + 1));
}

// One k = 16 step over the 8 column blocks, B fragment nt = the 16-byte piece at b + stride nt, both k-halves per
// block (two sweeps over the blocks measured the same: 401 vs 399 µs a layer at 1.3B, 16 more live registers).
__device__ __forceinline__ void step_pair(float (&acc)[kPt][4], const uint32_t (&f0)[4], const uint32_t (&f1)[4],
                                          const float* b, int stride) {
#pragma unroll
  for (int nt = 0; nt < kPt; ++nt) {
    const float4 v = *reinterpret_cast<const float4*>(b + stride * nt);
    mma(acc[nt], f0[0], f1[0], f0[1], f1[1], bits(v.x), bits(v.y));
    mma(acc[nt], f0[2], f1[2], f0[3], f1[3], bits(v.z), bits(v.w));
  }
}

// The bf16 form of step_pair: one m16n8k16 per column block instead of two m16n8k8. The 16 k values of the step map
// to the TF32 form's (logical k pairs 2t, 2t + 1 and 2t + 8, 2t + 9 are its 4t, 4t + 1 and 4t + 2, 4t + 3), so A is
// the same four values per row packed in pairs, and B the first 8 bytes of each 16-byte piece, where the shared
// stages hold that piece's 4 values as two bf16 pairs.
__device__ __forceinline__ void step_bf16(float (&acc)[kPt][4], const float (&x0)[4], const float (&x1)[4],
                                          const float* b, int stride) {
  const uint32_t f[4] = {pack_bf16x2(x0[0], x0[1]), pack_bf16x2(x1[0], x1[1]), pack_bf16x2(x0[2], x0[3]),
                         pack_bf16x2(x1[2], x1[3])};
#pragma unroll
  for (int nt = 0; nt < kPt; ++nt) {
    const uint2 w = *reinterpret_cast<const uint2*>(b + stride * nt);
    mma_bf16::mma(acc[nt], f, w.x, w.y);
  }
}

// A transposed 4 x 4 piece (4 consecutive k of one column) as stored for the step: four TF32-rounded floats, or
// (kBf16) two bf16 pairs in its first 8 bytes.
template <bool kBf16>
__device__ __forceinline__ void store_piece(float4* at, float a, float b, float c, float d) {
  if constexpr (kBf16)
    *reinterpret_cast<uint2*>(at) = make_uint2(pack_bf16x2(a, b), pack_bf16x2(c, d));
  else
    *at = make_float4(round_tf32(a), round_tf32(b), round_tf32(c), round_tf32(d));
}

// kVec: dY rows 16-byte aligned (16-byte copies); B rows and C·Bᵀ (scratch) always are. kBf16: the products on
// bf16 mma (operands rounded to bf16, fp32 accumulation), as the bf16 training's forward SSD.
template <bool kVec, bool kBf16>
__global__ void __launch_bounds__(kThreads, 2) dx_kernel(DxArgs a) {
  extern __shared__ __align__(16) float smem[];
  __shared__ float red[kThreads / 32];
  const int H = a.d.H, N = a.d.N, Q = a.ct.Q;
  const int c = blockIdx.x / H, h = blockIdx.x % H, g = h / (H / a.d.G);
  const int start = a.ct.chunk_start[c], len = a.ct.chunk_len[c], rows = (len + 15) & ~15;
  const int64_t chn = static_cast<int64_t>(c) * H + h, HP = static_cast<int64_t>(H) * kP;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gq = lane >> 2, tq = lane & 3;
  float* ys = smem;           // [Q / 4][kYq]: dY rows in 4 x 4 blocks (zeros past len)
  float* ds = ys + ys_floats(Q);  // [P / 4][kDq]: dS in 4 x 4 blocks, each transposed once landed (see stage 1)
  float* css = ds + (kP / 4) * kDq;  // [Q]
  float* dts = css + Q;       // [Q]
  float* ebs = dts + Q;       // [Q]: e^(cs_i − cs_m), m = 16 ⌊i / 16⌋ (0 past len): stage 2's off-diagonal factor
  const float* dSg = a.dS + chn * kP * N;  // 4 x 4 blocks (ssd_state_blocks.cuh), 16-byte aligned (scratch)
  // Block slots vb = (p quad, column quad) of kNmax / 4 columns at 16 vb: whole blocks per thread (it transposes
  // what it copied); slots past N / 4 stay empty.
  constexpr int kSlots = (kP / 4) * (kNmax / 4), kSq = kNmax / 4;
  for (int vb = tid; vb < kSlots; vb += kThreads) {
    const int pq = vb / kSq, nq = vb % kSq;
    if (nq >= N / 4) continue;
    const float* src = dSg + (pq * (N / 4) + nq) * 16;
#pragma unroll
    for (int q = 0; q < 4; ++q) cp_async::copy16(ds + 16 * vb + 4 * q, src + 4 * q, true);
  }
  cp_async::commit();
  const float* dyh = a.dy + static_cast<int64_t>(start) * HP + static_cast<int64_t>(h) * kP;
  // dY rows (stage 2's operand) by cp.async, the second group: they may land during stage 1 of the first pass. Each
  // thread copies whole 4 x 4 blocks, row-major as they come (transposed in place once landed, by the same thread).
  for (int e = tid; e < rows * (kP / 16); e += kThreads) {
    const int a4 = 4 * yblock_a(e), col = 4 * yblock_pq(e);
    float* dst = ys + yblock_at(e);
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int r = a4 + u;
      const float* src = dyh + static_cast<int64_t>(min(r, len - 1)) * HP + col;
      if constexpr (kVec)
        cp_async::copy4f<16>(dst + 4 * u, src, r < len);
      else
        cp_async::copy4f<4>(dst + 4 * u, src, r < len);
    }
  }
  cp_async::commit();
  const float* csc = a.cs + chn * Q;
  for (int j = tid; j < Q; j += kThreads) {
    css[j] = j < len ? csc[j] : 0.0f;
    dts[j] = j < len ? a.dt[static_cast<int64_t>(start + j) * H + h] : 0.0f;
    ebs[j] = j < len ? __expf(csc[j] - csc[j & ~15]) : 0.0f;
  }
  cp_async::wait_group<1>();  // this thread's dS copies (the dY rows' group may still be in flight)
  // Each dS block as landed holds pieces n % 4 = q of p % 4 = 0..3; stage 1 takes 4 consecutive n of one p, so it is
  // rewritten as rows r = p % 4 at piece r ^ s, s = 2 in the column quads 2, 3 (mod 4): the 8 lanes of a fragment
  // load phase (t = 0..3, g = 0, 1) then hit 32 banks.
  for (int vb = tid; vb < kSlots; vb += kThreads) {
    if (vb % kSq >= N / 4) continue;
    float4* v = reinterpret_cast<float4*>(ds + 16 * vb);
    const float4 q0 = v[0], q1 = v[1], q2 = v[2], q3 = v[3];
    const int s = vb & 2;  // column quad % 4 >= 2
    if constexpr (kBf16) {  // dS arrives TF32-rounded, then to bf16 here: <= 1 bf16 ulp off rounding the fp32 value
      store_piece<true>(v + (0 ^ s), q0.x, q1.x, q2.x, q3.x);
      store_piece<true>(v + (1 ^ s), q0.y, q1.y, q2.y, q3.y);
      store_piece<true>(v + (2 ^ s), q0.z, q1.z, q2.z, q3.z);
      store_piece<true>(v + (3 ^ s), q0.w, q1.w, q2.w, q3.w);
    } else {
      v[0 ^ s] = make_float4(q0.x, q1.x, q2.x, q3.x);
      v[1 ^ s] = make_float4(q0.y, q1.y, q2.y, q3.y);
      v[2 ^ s] = make_float4(q0.z, q1.z, q2.z, q3.z);
      v[3 ^ s] = make_float4(q0.w, q1.w, q2.w, q3.w);
    }
  }
  __syncthreads();
  const float cs_last = css[len - 1], Dh = a.D[h];
  const float* cbt = a.cbt + (static_cast<int64_t>(c) * a.d.G + g) * Q * Q;
  const float* Bg = a.b_tf32 + static_cast<int64_t>(start) * a.b_ld + static_cast<int64_t>(g) * N;
  const float* Xg = a.xbc + static_cast<int64_t>(start) * a.ld + static_cast<int64_t>(h) * kP;
  float dsum = 0.0f;
  // Warp w owns the 16-row tiles w and 15 - w (equal causal work per warp), all 64 columns p.
  for (int pass = 0; pass < 2; ++pass) {
    const int mt = pass == 0 ? warp : 15 - warp;
    const bool active = 16 * mt < len;  // warp-uniform
    const int r0 = 16 * mt + gq, r1 = r0 + 8;
    const int q0 = min(r0, len - 1), q1 = min(r1, len - 1);  // clamped rows for loads
    const bool ok0 = r0 < len, ok1 = r1 < len;
    float acc[kPt][4];  // the pass's dX rows (set in stage 1, used past the barrier in stage 2)
#pragma unroll
    for (int nt = 0; nt < kPt; ++nt) acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0.0f;
    if (active) {
      // Stage 1: G = B dSᵀ, k over n.
      const float* B0 = Bg + static_cast<int64_t>(q0) * a.b_ld + 4 * tq;
      const float* B1 = Bg + static_cast<int64_t>(q1) * a.b_ld + 4 * tq;
      // Half of the rows' loads in flight before their products (all of them would spill at 128 registers).
      for (int k0 = 0; k0 < N; k0 += 64) {
        float4 ub0[4], ub1[4];
#pragma unroll
        for (int ks = 0; ks < 4; ++ks)
          if (k0 + 16 * ks < N) {
            ub0[ks] = load4(B0 + k0 + 16 * ks, true);
            ub1[ks] = load4(B1 + k0 + 16 * ks, true);
          }
#pragma unroll
        for (int ks = 0; ks < 4; ++ks)
          if (k0 + 16 * ks < N) {
            const float4 u0 = ub0[ks], u1 = ub1[ks];
            // dS[8 nt + g][k0 + 16 ks + 4t .. + 3]: block (2 nt + g / 4, (k0 + 16 ks) / 4 + t), row g % 4
            const float* b = ds + (gq >> 2) * kDq + 16 * tq + 4 * ((gq & 3) ^ (tq & 2)) + 4 * (k0 + 16 * ks);
            if constexpr (kBf16) {
              const float x0[4] = {u0.x, u0.y, u0.z, u0.w}, x1[4] = {u1.x, u1.y, u1.z, u1.w};
              step_bf16(acc, x0, x1, b, 2 * kDq);
            } else {
              const uint32_t f0[4] = {bits(u0.x), bits(u0.y), bits(u0.z), bits(u0.w)};
              const uint32_t f1[4] = {bits(u1.x), bits(u1.y), bits(u1.z), bits(u1.w)};
              step_pair(acc, f0, f1, b, 2 * kDq);
            }
          }
      }
      // u_j = <G_j, X_j>, Σ dY∘X, then dX = D dY + w_j G (fp32 dY, X from device memory).
      const float* X0 = Xg + static_cast<int64_t>(q0) * a.ld;
      const float* X1 = Xg + static_cast<int64_t>(q1) * a.ld;
      const float* Y0 = dyh + static_cast<int64_t>(q0) * HP;
      const float* Y1 = dyh + static_cast<int64_t>(q1) * HP;
      const float w0 = __expf(cs_last - css[q0]) * dts[q0], w1 = __expf(cs_last - css[q1]) * dts[q1];
      float us0 = 0.0f, us1 = 0.0f;
#pragma unroll
      for (int nt = 0; nt < kPt; ++nt) {
        const int p = 8 * nt + 2 * tq;
        const float2 x0 = load2<kVec>(X0 + p), x1 = load2<kVec>(X1 + p), y0 = load2<kVec>(Y0 + p),
                     y1 = load2<kVec>(Y1 + p);
        const float x00 = x0.x, x01 = x0.y, x10 = x1.x, x11 = x1.y, y00 = y0.x, y01 = y0.y, y10 = y1.x, y11 = y1.y;
        us0 += acc[nt][0] * x00 + acc[nt][1] * x01;
        us1 += acc[nt][2] * x10 + acc[nt][3] * x11;
        if (ok0) dsum += y00 * x00 + y01 * x01;
        if (ok1) dsum += y10 * x10 + y11 * x11;
        acc[nt][0] = Dh * y00 + w0 * acc[nt][0];
        acc[nt][1] = Dh * y01 + w0 * acc[nt][1];
        acc[nt][2] = Dh * y10 + w1 * acc[nt][2];
        acc[nt][3] = Dh * y11 + w1 * acc[nt][3];
      }
      us0 += __shfl_xor_sync(0xffffffffu, us0, 1);
      us0 += __shfl_xor_sync(0xffffffffu, us0, 2);
      us1 += __shfl_xor_sync(0xffffffffu, us1, 1);
      us1 += __shfl_xor_sync(0xffffffffu, us1, 2);
      if (tq == 0) {
        if (ok0) a.u[chn * Q + r0] = us0;
        if (ok1) a.u[chn * Q + r1] = us1;
      }
    }
    if (pass == 0) {  // the dY rows: this thread's blocks transposed ([p % 4][i % 4]) and rounded in place
      cp_async::wait_group<0>();
      for (int e = tid; e < rows * (kP / 16); e += kThreads) {
        float4* b = reinterpret_cast<float4*>(ys + yblock_at(e));
        const float4 r0 = b[0], r1 = b[1], r2 = b[2], r3 = b[3];
        store_piece<kBf16>(b + 0, r0.x, r1.x, r2.x, r3.x);
        store_piece<kBf16>(b + 1, r0.y, r1.y, r2.y, r3.y);
        store_piece<kBf16>(b + 2, r0.z, r1.z, r2.z, r3.z);
        store_piece<kBf16>(b + 3, r0.w, r1.w, r2.w, r3.w);
      }
      __syncthreads();
    }
    if (!active) continue;
    // Stage 2: Σ_{i >= j} M[i, j] dY[i], k over i = 16 mt .. rows; A = columns r0, r1 of C·Bᵀ (rows of the
    // transposed copy: 16 bytes per lane and step), scaled.
    // Entries outside the causal part or past len are not the forward's: selected away, never multiplied.
    const float cs0 = css[q0], cs1 = css[q1], dt0 = dts[q0], dt1 = dts[q1];
    const int kend = rows / 16;
    // C·Bᵀ entries two k-steps ahead: e* (this step), n* (the next), loads of the one after in flight.
    float e0[4], e1[4], n0[4], n1[4];
    auto fetch = [&](int kb, float(&d0)[4], float(&d1)[4]) {  // r0, r1 < rows <= Q: written rows
      const float4 v0 = load4(cbt + (r0 * Q + 16 * kb + 4 * tq), true);
      const float4 v1 = load4(cbt + (r1 * Q + 16 * kb + 4 * tq), true);
      d0[0] = v0.x, d0[1] = v0.y, d0[2] = v0.z, d0[3] = v0.w;
      d1[0] = v1.x, d1[1] = v1.y, d1[2] = v1.z, d1[3] = v1.w;
    };
    fetch(mt, e0, e1);
    if (mt + 1 < kend) fetch(mt + 1, n0, n1);
    for (int kb = mt; kb < kend; ++kb) {
      const int ib = 16 * kb + 4 * tq;
      float x0[4], x1[4];  // rows r0, r1 of A at k = ib .. ib + 3
      if (kb > mt && 16 * kb + 16 <= len) {  // warp-uniform: off the diagonal block, every i < len
        // e^(cs_i − cs_j) = e^(cs_i − cs_m) e^(cs_m − cs_j), m = 16 kb: j < m <= i, so both factors are <= 1 (no
        // overflow; underflow only where the product underflows). The first from the block's table: 2 exps per
        // lane and step instead of 8, and no masks.
        const float4 ev = *reinterpret_cast<const float4*>(ebs + ib);
        const float cm = css[16 * kb];
        const float g0 = __expf(cm - cs0) * dt0, g1 = __expf(cm - cs1) * dt1;
        const float E[4] = {ev.x, ev.y, ev.z, ev.w};
#pragma unroll
        for (int u = 0; u < 4; ++u) {
          x0[u] = e0[u] * (E[u] * g0);
          x1[u] = e1[u] * (E[u] * g1);
        }
      } else {
#pragma unroll
        for (int u = 0; u < 4; ++u) {  // exp of a positive exponent (i < j) may overflow: selected, not multiplied
          const int i = ib + u;
          const float csi = css[i];
          x0[u] = i >= r0 && i < len ? e0[u] * __expf(csi - cs0) * dt0 : 0.0f;
          x1[u] = i >= r1 && i < len ? e1[u] * __expf(csi - cs1) * dt1 : 0.0f;
        }
      }
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        e0[u] = n0[u];
        e1[u] = n1[u];
      }
      if (kb + 2 < kend) fetch(kb + 2, n0, n1);  // in flight during this step's and the next step's products
      const float* yb = ys + (4 * kb + tq) * kYq + 4 * gq;  // dY[16 kb + 4t + u][8 nt + g], u = 0..3
      if constexpr (kBf16) {
        step_bf16(acc, x0, x1, yb, 32);
      } else {
        const uint32_t f0[4] = {rna_bits(x0[0]), rna_bits(x0[1]), rna_bits(x0[2]), rna_bits(x0[3])};
        const uint32_t f1[4] = {rna_bits(x1[0]), rna_bits(x1[1]), rna_bits(x1[2]), rna_bits(x1[3])};
        step_pair(acc, f0, f1, yb, 32);
      }
    }
    float* o0 = a.dx + static_cast<int64_t>(start + r0) * a.dx_stride + static_cast<int64_t>(h) * kP;
    float* o1 = a.dx + static_cast<int64_t>(start + r1) * a.dx_stride + static_cast<int64_t>(h) * kP;
#pragma unroll
    for (int nt = 0; nt < kPt; ++nt) {
      const int p = 8 * nt + 2 * tq;
      if (ok0) {
        o0[p] = acc[nt][0];
        o0[p + 1] = acc[nt][1];
      }
      if (ok1) {
        o1[p] = acc[nt][2];
        o1[p + 1] = acc[nt][3];
      }
    }
  }
  // Σ dY∘X over the chunk in a fixed order (warp sums, then the warps in order): entry 0 of the dDt row.
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) dsum += __shfl_xor_sync(0xffffffffu, dsum, o);
  if (lane == 0) red[warp] = dsum;
  __syncthreads();
  if (tid == 0) {
    float total = 0.0f;
    for (int w = 0; w < kThreads / 32; ++w) total += red[w];
    a.dDt[chn * a.qt] = total;
    for (int jt = 1; jt * 64 < len; ++jt) a.dDt[chn * a.qt + jt] = 0.0f;
  }
}

}  // namespace

bool dx_supported(const SsdDims& d, int32_t Q) {
  return d.P == kP && d.N % 16 == 0 && d.N <= kNmax && Q % 16 == 0 && Q <= kQmax && Q >= 16;
}

void dx_product(const DxArgs& a, cudaStream_t s) {
  const int smem = (ys_floats(a.ct.Q) + (kP / 4) * kDq + 3 * a.ct.Q) * static_cast<int>(sizeof(float));
  // The 16-byte dY copies where the inputs' bases and strides allow (always, except the tests' odd row strides).
  const bool vin = aligned(a.xbc, 16) && aligned(a.dy, 16) && a.ld % 4 == 0;
  PCM_CHECK(aligned(a.b_tf32, 16) && a.b_ld % 4 == 0 && aligned(a.cbt, 16),
            "SSD backward dX: rounded B rows and C·Bᵀ must be 16-byte aligned");
  auto kernel = a.bf16 ? (vin ? dx_kernel<true, true> : dx_kernel<false, true>)
                        : (vin ? dx_kernel<true, false> : dx_kernel<false, false>);
  allow_smem(kernel, smem);
  kernel<<<static_cast<unsigned>(a.ct.count) * a.d.H, kThreads, smem, s>>>(a);
  PCM_CUDA_LAUNCH();
}

}  // namespace pcm::cuda::bwd_tc
