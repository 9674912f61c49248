// Backward of the SSD (Mamba-2 state-space scan) over packed documents, each from zero state.
//
// The recurrence per (document, head):  h_t = a_t h_{t-1} + dt_t x_t B_tᵀ,  a_t = exp(dt_t A),
//                                       y_t = h_t C_t + D x_t        (h_t: [P, N])
// walked backwards with the state adjoint  dh_t = a_{t+1} dh_{t+1} + dy_t C_tᵀ:
//   dx_t = D dy_t + dt_t dh_t B_t,  dB_t = dt_t dh_tᵀ x_t,  dC_t = h_tᵀ dy_t,  dD += dy_t·x_t,
//   ddt_t = x_tᵀ dh_t B_t + A a_t <dh_t, h_{t-1}>,  dA += dt_t a_t <dh_t, h_{t-1}>.
// One block per (document, head); thread (p, r) holds E = N / R state entries of row p. A first pass saves
// the state at every Q-th step; the backward walk recomputes one chunk's Q states into a per-block
// history, then consumes them in reverse. Sums over p (dB, dC, ddt, dA) go through shared memory, buffered
// for kFlush steps between block barriers; sums over the heads of
// a group through a second kernel; every sum runs in a fixed order.
#include <algorithm>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/ssd_backward_sums.cuh"
#include "kernels/cuda/train_ops.h"

namespace pcm::cuda {
namespace {

constexpr int kFlush = 4;        // steps between the block barriers of the backward walk
constexpr int kMaxThreads = 512;  // register budget: E = 16 needs about 128 registers per thread

struct Layout {
  int E, R, threads;
  int64_t state_floats;  // one saved state, thread-major: element e of thread i at e * threads + i
};

Layout layout_for(int32_t P, int32_t N) {
  PCM_CHECK(N % 4 == 0, "CUDA SSD backward: state size {} must be a multiple of 4", N);
  Layout l;
  l.E = N % 16 == 0 ? 16 : N % 8 == 0 ? 8 : 4;
  l.R = N / l.E;
  PCM_CHECK(l.R <= 32 && (l.R & (l.R - 1)) == 0,
            "CUDA SSD backward: state size {} not supported (N / {} must be a power of two <= 32)", N, l.E);
  l.threads = (P * l.R + 31) / 32 * 32;
  PCM_CHECK(l.threads <= kMaxThreads, "CUDA SSD backward: head_dim {} x {} lanes exceeds a block of {}", P, l.R,
            kMaxThreads);
  l.state_floats = static_cast<int64_t>(l.threads) * l.E;
  return l;
}

struct Scratch {
  float *states, *hist, *dBp, *dCp, *dAp, *dDp;
};

Scratch carve(float* s, const Layout& l, int64_t T, int64_t chunks, int64_t docs, int64_t Q, int32_t H, int32_t N) {
  Scratch sc;
  sc.states = s;
  sc.hist = sc.states + chunks * H * l.state_floats;
  sc.dBp = sc.hist + docs * H * Q * l.state_floats;
  sc.dCp = sc.dBp + T * H * N;
  sc.dAp = sc.dCp + T * H * N;
  sc.dDp = sc.dAp + docs * H;
  return sc;
}

template <int E>
__global__ void __launch_bounds__(kMaxThreads) ssd_backward_kernel(SsdTrainGrads g, const float* dy, SsdTrainIn in, SsdDocs docs, int H, int G,
                                    int P, int N, int Q, Scratch sc) {
  extern __shared__ float smem[];
  __shared__ float red[32];
  const int R = N / E, nthr = blockDim.x, W = nthr / 32;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int p = tid / R, r = tid % R, n0 = r * E;
  const bool active = p < P;
  const int doc = blockIdx.x, h = blockIdx.y, grp = h / (H / G);
  const int64_t begin = docs.begin[doc], len = docs.len[doc];
  const int64_t SZ = static_cast<int64_t>(nthr) * E;
  float* states = sc.states + (static_cast<int64_t>(docs.chunk0[doc]) * H + h) * SZ;  // chunk c at + c * H * SZ
  float* hist = sc.hist + (static_cast<int64_t>(doc) * H + h) * Q * SZ;
  const float A = in.A[h], Dh = in.D[h];
  const int64_t xoff = static_cast<int64_t>(h) * P + p, boff = static_cast<int64_t>(H) * P + grp * N + n0,
                coff = boff + static_cast<int64_t>(G) * N;
  // Per-step warp partials, buffered for kFlush steps in each of two sets: one barrier per kFlush steps.
  constexpr int K2 = 2 * kFlush;
  float* sm_b = smem;                     // [K2][W][N]
  float* sm_c = sm_b + K2 * W * N;        // [K2][W][N]
  float* sm_s = sm_c + K2 * W * N;        // [K2][W]
  float* sm_u = sm_s + K2 * W;            // [K2][W]
  float* sm_dt = sm_u + K2 * W;           // [K2]
  int* sm_t = reinterpret_cast<int*>(sm_dt + K2);  // [K2]
  int set = 0, fill = 0;
  float dA_acc = 0.0f;  // on the last warp's lane 0
  // Sums over the warps of `cnt` buffered steps of set `st`: dB/dC spread over all threads, the two
  // scalars (-> ddt, dA) on the last warp, steps in order (dA_acc's order is fixed).
  auto flush = [&](int st, int cnt) {
    for (int j = tid; j < cnt * 2 * N; j += nthr) {
      const int slot = st * kFlush + j / (2 * N), k = j % (2 * N);
      const bool is_c = k >= N;
      const int n = is_c ? k - N : k;
      const float* src = (is_c ? sm_c : sm_b) + static_cast<int64_t>(slot) * W * N + n;
      float acc = 0.0f;
#pragma unroll 4
      for (int w = 0; w < W; ++w) acc += src[w * N];
      const int64_t o = (static_cast<int64_t>(sm_t[slot]) * H + h) * N + n;
      if (is_c)
        sc.dCp[o] = acc;
      else
        sc.dBp[o] = sm_dt[slot] * acc;
    }
    if (warp == W - 1) {
      for (int i = 0; i < cnt; ++i) {
        const int slot = st * kFlush + i;
        const float s_all = warp_sum(lane < W ? sm_s[slot * W + lane] : 0.0f);
        const float u_all = warp_sum(lane < W ? sm_u[slot * W + lane] : 0.0f);
        if (lane == 0) {
          const float dts = sm_dt[slot], as = expf(dts * A);
          g.ddt[static_cast<int64_t>(sm_t[slot]) * H + h] = s_all + u_all * A * as;
          dA_acc += u_all * dts * as;
        }
      }
    }
  };

  float hr[E];
#pragma unroll
  for (int e = 0; e < E; ++e) hr[e] = 0.0f;
  // Pass 1: the state at the start of every chunk.
  for (int64_t t = 0; t < len; ++t) {
    if (t % Q == 0) {
      float* st = states + (t / Q) * H * SZ;
#pragma unroll
      for (int e = 0; e < E; ++e) st[e * nthr + tid] = hr[e];
    }
    const float* row = in.xbc + (begin + t) * in.stride;
    const float dt = in.dt[(begin + t) * H + h], a = expf(dt * A);
    const float xp = active ? row[xoff] : 0.0f;
#pragma unroll
    for (int e = 0; e < E; ++e) hr[e] = a * hr[e] + dt * xp * row[boff + e];
  }

  // Pass 2: chunks in reverse.
  float dh[E];
#pragma unroll
  for (int e = 0; e < E; ++e) dh[e] = 0.0f;
  float a_next = 0.0f, dD_acc = 0.0f;
  const int64_t nc = (len + Q - 1) / Q;
  for (int64_t c = nc - 1; c >= 0; --c) {
    const int64_t t0 = c * Q;
    const int ql = static_cast<int>(min(static_cast<int64_t>(Q), len - t0));
    const float* st = states + c * H * SZ;
#pragma unroll
    for (int e = 0; e < E; ++e) hr[e] = st[e * nthr + tid];
    for (int q = 0; q < ql; ++q) {  // recompute this chunk's states (each thread only reads its own later)
      const float* row = in.xbc + (begin + t0 + q) * in.stride;
      const float dt = in.dt[(begin + t0 + q) * H + h], a = expf(dt * A);
      const float xp = active ? row[xoff] : 0.0f;
#pragma unroll
      for (int e = 0; e < E; ++e) {
        hr[e] = a * hr[e] + dt * xp * row[boff + e];
        hist[q * SZ + e * nthr + tid] = hr[e];
      }
    }
    // hr = h at the chunk's last step
    for (int q = ql - 1; q >= 0; --q) {
      const int64_t t = begin + t0 + q;
      const float* row = in.xbc + t * in.stride;
      const float dt = in.dt[t * H + h], a = expf(dt * A);
      const float xp = active ? row[xoff] : 0.0f;
      const float dyp = active ? dy[t * H * P + xoff] : 0.0f;
      float hp[E];
      const float* prev = q > 0 ? hist + (q - 1) * SZ : st;
#pragma unroll
      for (int e = 0; e < E; ++e) hp[e] = prev[e * nthr + tid];
      float sx = 0.0f, u = 0.0f, bpart[E], cpart[E];
#pragma unroll
      for (int e = 0; e < E; ++e) {
        const float Be = row[boff + e], Ce = row[coff + e];
        dh[e] = dh[e] * a_next + dyp * Ce;
        sx += dh[e] * Be;
        u += dh[e] * hp[e];
        bpart[e] = dh[e] * xp;
        cpart[e] = dyp * hr[e];
      }
      for (int o = 1; o < R; o <<= 1) sx += __shfl_xor_sync(0xffffffffu, sx, o);  // over row p's lanes
      if (active && r == 0) {
        g.dxbc[t * g.stride + xoff] = Dh * dyp + dt * sx;
        dD_acc += dyp * xp;
      }
      for (int o = R; o < 32; o <<= 1) {  // over the rows p of this warp
#pragma unroll
        for (int e = 0; e < E; ++e) {
          bpart[e] += __shfl_xor_sync(0xffffffffu, bpart[e], o);
          cpart[e] += __shfl_xor_sync(0xffffffffu, cpart[e], o);
        }
      }
      const float s_w = warp_sum(r == 0 ? xp * sx : 0.0f), u_w = warp_sum(u);
      const int slot = set * kFlush + fill;
      if (lane < R) {
#pragma unroll
        for (int e = 0; e < E; ++e) {
          sm_b[(slot * W + warp) * N + n0 + e] = bpart[e];
          sm_c[(slot * W + warp) * N + n0 + e] = cpart[e];
        }
      }
      if (lane == 0) {
        sm_s[slot * W + warp] = s_w;
        sm_u[slot * W + warp] = u_w;
      }
      if (tid == 0) {
        sm_dt[slot] = dt;
        sm_t[slot] = static_cast<int>(t);
      }
      if (++fill == kFlush) {  // the other set was read before this barrier's previous one
        __syncthreads();
        flush(set, kFlush);
        set ^= 1;
        fill = 0;
      }
#pragma unroll
      for (int e = 0; e < E; ++e) hr[e] = hp[e];
      a_next = a;
    }
  }
  if (fill > 0) {
    __syncthreads();
    flush(set, fill);
  }
  const float dD_sum = block_sum(dD_acc, red);
  if (tid == 0) sc.dDp[doc * H + h] = dD_sum;
  if (warp == W - 1 && lane == 0) sc.dAp[doc * H + h] = dA_acc;  // accumulated on the last warp
}

}  // namespace

int64_t ssd_backward_scratch_floats(int64_t T, int64_t chunks, int64_t docs, int64_t Q, int32_t H, int32_t G,
                                    int32_t P, int32_t N) {
  (void)G;
  const Layout l = layout_for(P, N);
  return chunks * H * l.state_floats + docs * H * Q * l.state_floats + 2 * T * H * N + 2 * docs * H;
}

void ssd_backward(const SsdTrainGrads& g, const float* dy, const SsdTrainIn& in, const SsdDocs& docs, int32_t H,
                  int32_t G, int32_t P, int32_t N, int64_t T, int32_t Q, float* scratch, cudaStream_t s) {
  PCM_CHECK(G > 0 && H % G == 0, "CUDA SSD backward: {} heads do not split into {} groups", H, G);
  PCM_CHECK(Q > 0, "CUDA SSD backward: chunk length must be > 0");
  if (docs.count == 0) return;
  const Layout l = layout_for(P, N);
  const Scratch sc = carve(scratch, l, T, docs.chunks, docs.count, Q, H, N);
  const int W = l.threads / 32;
  const size_t smem = sizeof(float) * static_cast<size_t>(2 * kFlush * (W * (2 * N + 2) + 2));
  const dim3 grid(static_cast<unsigned>(docs.count), static_cast<unsigned>(H));
  auto launch = [&](auto kernel) {
    if (smem > 48 * 1024)
      PCM_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
    kernel<<<grid, l.threads, smem, s>>>(g, dy, in, docs, H, G, P, N, Q, sc);
  };
  switch (l.E) {
    case 16:
      launch(ssd_backward_kernel<16>);
      break;
    case 8:
      launch(ssd_backward_kernel<8>);
      break;
    default:
      launch(ssd_backward_kernel<4>);
  }
  PCM_CUDA_LAUNCH();
  group_sum_kernel<<<blocks_for(T * G * N, 256), 256, 0, s>>>(g.dxbc, g.stride, sc.dBp, sc.dCp, T, H, G, P, N);
  PCM_CUDA_LAUNCH();
  head_sum_kernel<<<blocks_for(H, 128), 128, 0, s>>>(g.dA, g.dD, sc.dAp, sc.dDp, docs.count, H);
  PCM_CUDA_LAUNCH();
}

}  // namespace pcm::cuda
