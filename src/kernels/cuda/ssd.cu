// The SSD scan on the GPU. Prefill: the chunked form over packed sequences in five launches
//   cumsum    cs = running sum of dt*A inside each chunk                   [chunks, H, Q]
//   cb        CB = C·Bᵀ per chunk and group (causal half only)             [chunks, G, Q, Q]
//   states    chunk-local states  Σ_j exp(cs_last - cs_j) dt_j x_j ⊗ B_j    [chunks, H, P, N]
//   pass      sequential over each sequence's chunks: the state entering every chunk, final state -> slot
//             (inference on the tensor-core path: done by the chunk states kernel itself, ssd_state_pass.cuh)
//   output    Y = exp(cs_i) C_i·S_enter + (CB ∘ L)·X + D·x
// Each matrix-shaped step is a 64x64 output tile per block, 32-deep slabs of its operands in shared
// memory; the products on the TF32 tensor cores (WMMA, fp32 accumulation) or, for exact fp32, on the CUDA
// cores (4x4 outputs per thread). For P = 64, N = 128 (Codestral) with TF32, chunk states and outputs run on
// the mma.sync kernels of ssd_prefill_tc.cu instead, and with x and B in bf16 (bf16 models) on the bf16 ones of
// ssd_states_bf16.cu and ssd_output_bf16.cu. Decode (one recurrence step): ssd_decode.cu.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/mma_tf32.cuh"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/ssd_chunks.h"
#include "kernels/cuda/ssd_prefill_tc.h"
#include "kernels/cuda/ssd_tile.cuh"

namespace pcm::cuda {
namespace {

using namespace ssd_tile;

using Scratch = SsdChunkScratch;  // cs [chunks, H, Q], cb [chunks, G, Q, Q], states [chunks, H, P, N]

// Block per (chunk, head): inclusive scan of dt*A over the chunk (len <= 256 = blockDim). sync (tensor-core path):
// zeroes the chunk states' handoff flag of its (chunk, head) and block 0 their ticket counter, for the next launch.
__global__ void __launch_bounds__(kMaxQ) cumsum_kernel(float* cs, SsdIn in, SsdDims d, ChunkTable ct, unsigned* sync) {
  __shared__ float warp_tot[kMaxQ / 32];
  const int c = blockIdx.x / d.H, h = blockIdx.x % d.H, i = threadIdx.x, lane = i & 31, warp = i >> 5;
  if (sync && i == 0) {
    sync[blockIdx.x] = 0;
    if (blockIdx.x == 0) sync[static_cast<int64_t>(ct.count) * d.H] = 0;
  }
  const int start = ct.chunk_start[c], len = ct.chunk_len[c];
  float v = i < len ? in.dt[static_cast<int64_t>(start + i) * d.H + h] * in.A[h] : 0.0f;
  for (int o = 1; o < 32; o <<= 1) {
    const float n = __shfl_up_sync(0xffffffffu, v, o);
    if (lane >= o) v += n;
  }
  if (lane == 31) warp_tot[warp] = v;
  __syncthreads();
  for (int w = 0; w < warp; ++w) v += warp_tot[w];
  if (i < len) cs[(static_cast<int64_t>(c) * d.H + h) * ct.Q + i] = v;
}

// CB[c, g, i, j] = Σ_n C[i, n] B[j, n] for the tiles with j-tile <= i-tile; kAlsoT: also CBᵀ[c, g, j, i] into cbt
// (the tensor-core backward's dX reads C·Bᵀ by columns).
template <class Acc, bool kAlsoT = false>
__global__ void __launch_bounds__(kThreads) cb_kernel(float* cb, SsdIn in, SsdDims d, ChunkTable ct,
                                                      float* cbt = nullptr) {
  if (blockIdx.x > blockIdx.y) return;
  __shared__ TileSmem s;
  const int c = blockIdx.z / d.G, g = blockIdx.z % d.G;
  const int start = ct.chunk_start[c], len = ct.chunk_len[c], Q = ct.Q;
  const int i0 = blockIdx.y * kTile, j0 = blockIdx.x * kTile;
  const int64_t boff = static_cast<int64_t>(d.H) * d.P + static_cast<int64_t>(g) * d.N;
  const int64_t coff = boff + static_cast<int64_t>(d.G) * d.N;
  Acc acc;
  acc.zero();
  for (int n0 = 0; n0 < d.N; n0 += kSlab) {
    for (int e = threadIdx.x; e < kTile * kSlab; e += kThreads) {
      const int r = e / kSlab, k = e % kSlab, n = n0 + k;
      const int i = i0 + r, j = j0 + r;
      s.a[r][k] = (i < len && n < d.N) ? in.xbc[(start + i) * in.stride + coff + n] : 0.0f;
      s.b[k][r] = (j < len && n < d.N) ? in.xbc[(start + j) * in.stride + boff + n] : 0.0f;
    }
    __syncthreads();
    acc.mma(s);
    __syncthreads();
  }
  acc.store(s);
  __syncthreads();
  float* out = cb + (static_cast<int64_t>(c) * d.G + g) * Q * Q;
  for (int e = threadIdx.x; e < kTile * kTile; e += kThreads) {
    const int r = e / kTile, cc = e % kTile, i = i0 + r, j = j0 + cc;
    if (i < Q && j < Q) out[static_cast<int64_t>(i) * Q + j] = s.out[r][cc];
  }
  if constexpr (kAlsoT) {
    float* outt = cbt + (static_cast<int64_t>(c) * d.G + g) * Q * Q;
    for (int e = threadIdx.x; e < kTile * kTile; e += kThreads) {  // consecutive threads: consecutive i
      const int cc = e / kTile, r = e % kTile, i = i0 + r, j = j0 + cc;
      if (i < Q && j < Q) outt[static_cast<int64_t>(j) * Q + i] = s.out[r][cc];
    }
  }
}

// cbt[c, g, j, i] = cb[c, g, i, j] over the 64-tiles with j-tile <= i-tile (the only ones cb holds), in 32 x 32 tiles
// through shared memory: blockIdx.x = j 32-tile, y = i 32-tile, z = chunk x group.
__global__ void cb_transpose_kernel(const float* cb, float* cbt, int Q) {
  if (blockIdx.x / 2 > blockIdx.y / 2) return;  // j's 64-tile past i's: not written in cb
  __shared__ float tile[32][33];
  const int64_t base = static_cast<int64_t>(blockIdx.z) * Q * Q;
  const int i0 = 32 * blockIdx.y, j0 = 32 * blockIdx.x, tx = threadIdx.x % 32, ty = threadIdx.x / 32;
  for (int r = ty; r < 32; r += 8)
    if (i0 + r < Q && j0 + tx < Q) tile[r][tx] = cb[base + static_cast<int64_t>(i0 + r) * Q + j0 + tx];
  __syncthreads();
  for (int r = ty; r < 32; r += 8)
    if (j0 + r < Q && i0 + tx < Q) cbt[base + static_cast<int64_t>(j0 + r) * Q + i0 + tx] = tile[tx][r];
}

// states[c, h, p, n] = Σ_j x[j, p] w_j B[j, n],  w_j = exp(cs_last - cs_j) dt_j
template <class Acc>
__global__ void __launch_bounds__(kThreads) chunk_state_kernel(float* states, const float* cs, SsdIn in, SsdDims d,
                                                               ChunkTable ct) {
  __shared__ TileSmem s;
  __shared__ float w[kMaxQ];
  const int c = blockIdx.z / d.H, h = blockIdx.z % d.H, g = h / (d.H / d.G);
  const int start = ct.chunk_start[c], len = ct.chunk_len[c];
  const int p0 = blockIdx.y * kTile, n0 = blockIdx.x * kTile;
  const float* csc = cs + (static_cast<int64_t>(c) * d.H + h) * ct.Q;
  const float last = csc[len - 1];
  for (int j = threadIdx.x; j < len; j += kThreads)
    w[j] = __expf(last - csc[j]) * in.dt[static_cast<int64_t>(start + j) * d.H + h];
  __syncthreads();
  const int64_t xoff = static_cast<int64_t>(h) * d.P;
  const int64_t boff = static_cast<int64_t>(d.H) * d.P + static_cast<int64_t>(g) * d.N;
  Acc acc;
  acc.zero();
  for (int j0 = 0; j0 < len; j0 += kSlab) {
    for (int e = threadIdx.x; e < kTile * kSlab; e += kThreads) {
      const int k = e / kTile, r = e % kTile, j = j0 + k;
      const int p = p0 + r, n = n0 + r;
      const float* row = in.xbc + (start + j) * in.stride;
      s.a[r][k] = (j < len && p < d.P) ? row[xoff + p] * w[j] : 0.0f;
      s.b[k][r] = (j < len && n < d.N) ? row[boff + n] : 0.0f;
    }
    __syncthreads();
    acc.mma(s);
    __syncthreads();
  }
  acc.store(s);
  __syncthreads();
  float* out = states + (static_cast<int64_t>(c) * d.H + h) * d.P * d.N;
  for (int e = threadIdx.x; e < kTile * kTile; e += kThreads) {
    const int r = e / kTile, cc = e % kTile, p = p0 + r, n = n0 + cc;
    if (p < d.P && n < d.N) out[static_cast<int64_t>(p) * d.N + n] = s.out[r][cc];
  }
}

// Sequential over a sequence's chunks, parallel over (head, p, n): replaces each chunk's local state with
// the state entering the chunk, starting from the slot's state (zeros when `state` is null) and leaving the
// final state in the slot when `keep_final`. Sequence i's slot: seq_slot[i], or i when seq_slot is null.
// round_out: the entering states are stored rounded to TF32 (the running state stays fp32).
template <class S>
__global__ void state_pass_kernel(float* states, const float* cs, S* state, bool keep_final, int64_t slot_stride,
                                  SsdDims d, ChunkTable ct, const int32_t* seq_slot, bool round_out = false) {
  const int64_t PN = static_cast<int64_t>(d.P) * d.N;
  const int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (e >= PN) return;
  const int h = blockIdx.y, sq = blockIdx.z;
  S* slot_state = state ? state + (seq_slot ? seq_slot[sq] : sq) * slot_stride + h * PN + e : nullptr;
  float S_run = slot_state ? to_float(*slot_state) : 0.0f;
  const int c_end = ct.seq_chunk[sq + 1];
  constexpr int kBatch = 4;  // loads of several chunks in flight before the dependent updates (16: slower)
  for (int c0 = ct.seq_chunk[sq]; c0 < c_end; c0 += kBatch) {
    float contrib[kBatch], decay[kBatch];
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
      const int c = c0 + u;
      if (c < c_end) {
        contrib[u] = states[(static_cast<int64_t>(c) * d.H + h) * PN + e];
        decay[u] = __expf(cs[(static_cast<int64_t>(c) * d.H + h) * ct.Q + ct.chunk_len[c] - 1]);
      }
    }
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
      const int c = c0 + u;
      if (c < c_end) {
        states[(static_cast<int64_t>(c) * d.H + h) * PN + e] = round_out ? mma_tf32::round_tf32(S_run) : S_run;
        S_run = decay[u] * S_run + contrib[u];
      }
    }
  }
  if (keep_final) *slot_state = from_float<S>(S_run);
}

// y[i, p] = Σ_n exp(cs_i) C[i, n] S[p, n] + Σ_{j<=i} CB[i, j] exp(cs_i - cs_j) dt_j x[j, p] + D x[i, p]
template <class Acc>
__global__ void __launch_bounds__(kThreads, 4) output_kernel(float* y, const Scratch sc, SsdIn in, SsdDims d,
                                                          ChunkTable ct) {
  __shared__ TileSmem s;
  __shared__ float csS[kMaxQ], dtS[kMaxQ];
  const int c = blockIdx.z / d.H, h = blockIdx.z % d.H, g = h / (d.H / d.G);
  const int start = ct.chunk_start[c], len = ct.chunk_len[c], Q = ct.Q;
  const int i0 = blockIdx.y * kTile, p0 = blockIdx.x * kTile;
  if (i0 >= len) return;
  const float* csc = sc.cs + (static_cast<int64_t>(c) * d.H + h) * Q;
  for (int j = threadIdx.x; j < len; j += kThreads) {
    csS[j] = csc[j];
    dtS[j] = in.dt[static_cast<int64_t>(start + j) * d.H + h];
  }
  __syncthreads();
  const int64_t xoff = static_cast<int64_t>(h) * d.P;
  const int64_t coff = static_cast<int64_t>(d.H) * d.P + static_cast<int64_t>(d.G + g) * d.N;
  const float* Sent = sc.states + (static_cast<int64_t>(c) * d.H + h) * d.P * d.N;
  Acc acc;
  acc.zero();
  for (int n0 = 0; n0 < d.N; n0 += kSlab) {  // inter-chunk: diag(exp(cs)) C · S_enterᵀ
    for (int e = threadIdx.x; e < kTile * kSlab; e += kThreads) {
      const int r = e / kSlab, k = e % kSlab, n = n0 + k;
      const int i = i0 + r, p = p0 + r;
      s.a[r][k] = (i < len && n < d.N) ? in.xbc[(start + i) * in.stride + coff + n] * __expf(csS[i]) : 0.0f;
      s.b[k][r] = (p < d.P && n < d.N) ? Sent[static_cast<int64_t>(p) * d.N + n] : 0.0f;
    }
    __syncthreads();
    acc.mma(s);
    __syncthreads();
  }
  const float* CB = sc.cb + (static_cast<int64_t>(c) * d.G + g) * Q * Q;
  const int j_end = min(len, i0 + kTile);
  for (int j0 = 0; j0 < j_end; j0 += kSlab) {  // intra-chunk: (CB ∘ L) · X
    for (int e = threadIdx.x; e < kTile * kSlab; e += kThreads) {
      const int r = e / kSlab, k = e % kSlab, i = i0 + r, j = j0 + k;
      s.a[r][k] = (i < len && j <= i) ? CB[static_cast<int64_t>(i) * Q + j] * __expf(csS[i] - csS[j]) * dtS[j] : 0.0f;
    }
    for (int e = threadIdx.x; e < kTile * kSlab; e += kThreads) {
      const int k = e / kTile, r = e % kTile, j = j0 + k, p = p0 + r;
      s.b[k][r] = (j < len && p < d.P) ? in.xbc[(start + j) * in.stride + xoff + p] : 0.0f;
    }
    __syncthreads();
    acc.mma(s);
    __syncthreads();
  }
  acc.store(s);
  __syncthreads();
  const float Dh = in.D[h];
  const int64_t HP = static_cast<int64_t>(d.H) * d.P;
  for (int e = threadIdx.x; e < kTile * kTile; e += kThreads) {
    const int r = e / kTile, cc = e % kTile, i = i0 + r, p = p0 + cc;
    if (i < len && p < d.P) {
      const int64_t t = start + i;
      y[t * HP + xoff + p] = s.out[r][cc] + Dh * in.xbc[t * in.stride + xoff + p];
    }
  }
}

// The launches up to the chunk states, shared by the forward and the backward's recomputation: cumsum, C·Bᵀ and
// the chunk states. Returns whether the whole-chunk tensor-core kernels of ssd_prefill_tc.cu apply (Codestral-like
// heads with TF32), so that the output uses them too. With `pass` (the inference forward, ssd_chunked) and the tc
// kernels, C·Bᵀ runs on mma.sync and the chunk states kernel does the state pass itself: sc.states are the
// entering states, final states in the slots (returned in pass_done). Otherwise sc.states holds the local states
// for state_pass_kernel. The backward's recomputation (ssd_chunk_states, pass null) keeps main's kernels: with the
// fold and the mma C·Bᵀ there its SSD measured +4.6 ms per 1.3B training step (bench/cuda_notes.md, prefill v11).
struct Prologue {
  bool tc, pass_done;
};

// SsdIn::xbc_bf16 before any launch: the bf16 kernels run only on the tensor-core path with the state pass folded in
// (the inference forward), from 16-byte aligned rows.
void check_bf16_inputs(const SsdIn& in, bool use_tc, bool pass) {
  PCM_CHECK(use_tc, "CUDA SSD: bf16 x, B, C only on the tensor-core path (TF32, P = 64, N = 128, Q <= 256 a multiple "
                    "of 16, 16-byte aligned xbc rows)");
  PCM_CHECK(pass, "CUDA SSD: bf16 x, B, C only in the forward with its state pass (ssd_chunked)");
  PCM_CHECK(aligned(in.xbc_bf16, 16) && in.bf16_stride % 8 == 0,
            "CUDA SSD: bf16 x, B, C need 16-byte aligned rows (stride {} elements)", in.bf16_stride);
}

Prologue chunk_prologue(const Scratch& sc, float* scratch, const SsdIn& in, const SsdDims& d, const ChunkTable& ct,
                        bool tf32, const tc::StatePass* pass, cudaStream_t s, float* cbt = nullptr) {
  const int64_t Q = ct.Q;
  const bool use_tc = tf32 && tc::ssd_tc_supported(in, d, Q) && aligned(scratch, 16);
  if (in.xbc_bf16) check_bf16_inputs(in, use_tc, pass != nullptr);
  const bool fold = use_tc && pass;
  float* bt = scratch + ct.count * (d.H * Q + d.G * Q * Q + static_cast<int64_t>(d.H) * d.P * d.N);
  tc::StatePass ps = pass ? *pass : tc::StatePass{};
  // After B transposed (bt: chunks * G N Q floats): the handoff flags and ticket of the chunk states.
  if (fold) ps.sync = reinterpret_cast<unsigned*>(bt + ct.count * static_cast<int64_t>(d.G) * d.N * Q);
  cumsum_kernel<<<ct.count * d.H, kMaxQ, 0, s>>>(sc.cs, in, d, ct, ps.sync);
  PCM_CUDA_LAUNCH();
  const unsigned qt = static_cast<unsigned>((Q + kTile - 1) / kTile);
  const unsigned pt = static_cast<unsigned>((d.P + kTile - 1) / kTile), nt = static_cast<unsigned>((d.N + kTile - 1) / kTile);
  const dim3 cb_grid(qt, qt, ct.count * d.G), st_grid(nt, pt, ct.count * d.H);
  if (tf32) {
    if (fold)
      tc::cb_product(sc.cb, in, d, ct, s);
    else if (cbt)
      cb_kernel<TensorAcc, true><<<cb_grid, kThreads, 0, s>>>(sc.cb, in, d, ct, cbt);
    else
      cb_kernel<TensorAcc><<<cb_grid, kThreads, 0, s>>>(sc.cb, in, d, ct);
    PCM_CUDA_LAUNCH();
    if (in.xbc_bf16) {  // bf16 models: x and B in bf16, fragments by ldmatrix (518 vs 683 µs, prefill v13)
      tc::chunk_states_bf16(sc.states, sc.cs, in, d, ct, ps, s);
    } else if (use_tc) {  // B of each chunk transposed and rounded first: its fragments become 16-byte loads
      ssd_chunk_transpose(bt, in, static_cast<int64_t>(d.H) * d.P, d, ct, s);
      tc::chunk_states(sc.states, sc.cs, in, d, ct, ps, s, bt);
    }
    else
      chunk_state_kernel<TensorAcc><<<st_grid, kThreads, 0, s>>>(sc.states, sc.cs, in, d, ct);
  } else {
    cb_kernel<SimtAcc><<<cb_grid, kThreads, 0, s>>>(sc.cb, in, d, ct);
    chunk_state_kernel<SimtAcc><<<st_grid, kThreads, 0, s>>>(sc.states, sc.cs, in, d, ct);
  }
  PCM_CUDA_LAUNCH();
  return {use_tc, fold};
}

// bt[c, g, n, q] = xbc[start_c + q, off + g N + n] rounded to TF32 for q < len_c, 0 for len_c <= q < Q: each
// chunk's B (off = H P) or C (off = H P + G N) transposed (the chunk states' and U's B fragments, four rows of one
// column n, become one 16-byte load). Tiles of 32 x 32 through shared memory: blockIdx.x = q-tile, y = column tile
// of G N, z = chunk.
__global__ void transpose_bc_kernel(float* bt, const float* xbc, int64_t ld, int64_t off, int GN, ChunkTable ct) {
  __shared__ float tile[32][33];
  const int c = blockIdx.z, q0 = 32 * blockIdx.x, n0 = 32 * blockIdx.y, Q = ct.Q;
  const int start = ct.chunk_start[c], len = ct.chunk_len[c];
  const int tx = threadIdx.x % 32, ty = threadIdx.x / 32;
  for (int r = ty; r < 32; r += 8) {  // rows q of the chunk, columns n
    const int q = q0 + r, n = n0 + tx;
    tile[r][tx] = q < len && n < GN ? mma_tf32::round_tf32(xbc[(start + static_cast<int64_t>(q)) * ld + off + n]) : 0.0f;
  }
  __syncthreads();
  for (int r = ty; r < 32; r += 8) {  // rows n of the transpose, columns q
    const int n = n0 + r, q = q0 + tx;
    if (n < GN && q < Q) bt[(static_cast<int64_t>(c) * GN + n) * Q + q] = tile[tx][r];
  }
}

Scratch scratch_of(float* scratch, const ChunkTable& ct, const SsdDims& d) {
  const int64_t chunks = ct.count, Q = ct.Q;
  return {scratch, scratch + chunks * d.H * Q, scratch + chunks * (d.H * Q + d.G * Q * Q)};
}

}  // namespace

void check_ssd_dims(const SsdDims& d) {
  PCM_CHECK(d.N >= 1 && d.N <= 256, "CUDA SSD: state size {} not supported (at most 256)", d.N);
  PCM_CHECK(d.G > 0 && d.H % d.G == 0, "CUDA SSD: {} heads do not split into {} groups", d.H, d.G);
}

SsdChunkScratch ssd_chunk_states(float* scratch, const SsdIn& in, const float* state0, const SsdDims& d,
                                 const ChunkTable& ct, int32_t seqs, bool tf32, cudaStream_t s, bool round_states,
                                 float* cbt) {
  PCM_CHECK(!cbt || tf32, "CUDA SSD: the transposed C·Bᵀ only on the TF32 path");
  check_ssd_dims(d);
  PCM_CHECK(ct.Q > 0 && ct.Q <= kMaxQ, "CUDA SSD: chunk size {} not supported (at most {})", ct.Q, kMaxQ);
  const Scratch sc = scratch_of(scratch, ct, d);
  if (ct.count == 0) return sc;
  chunk_prologue(sc, scratch, in, d, ct, tf32, nullptr, s, cbt);
  dim3 pass_grid(blocks_for(static_cast<int64_t>(d.P) * d.N, 256), d.H, seqs);
  state_pass_kernel<<<pass_grid, 256, 0, s>>>(sc.states, sc.cs, const_cast<float*>(state0), false,
                                              static_cast<int64_t>(d.H) * d.P * d.N, d, ct, nullptr, round_states);
  PCM_CUDA_LAUNCH();
  return sc;
}

SsdChunkScratch ssd_chunk_cb(float* scratch, const SsdIn& in, const SsdDims& d, const ChunkTable& ct, float* cbt,
                             cudaStream_t s) {
  check_ssd_dims(d);
  const Scratch sc = scratch_of(scratch, ct, d);
  if (ct.count == 0) return sc;
  const unsigned qt = static_cast<unsigned>((ct.Q + kTile - 1) / kTile);
  cb_kernel<TensorAcc, true><<<dim3(qt, qt, ct.count * d.G), kThreads, 0, s>>>(sc.cb, in, d, ct, cbt);
  PCM_CUDA_LAUNCH();
  return sc;
}

void ssd_chunk_cb_transpose(float* cbt, const float* cb, const SsdDims& d, const ChunkTable& ct, cudaStream_t s) {
  if (ct.count == 0) return;
  const unsigned t = static_cast<unsigned>((ct.Q + 31) / 32);
  cb_transpose_kernel<<<dim3(t, t, static_cast<unsigned>(ct.count) * d.G), 256, 0, s>>>(cb, cbt, ct.Q);
  PCM_CUDA_LAUNCH();
}

bool ssd_bf16_supported(const SsdDims& d, int64_t Q) { return tc::ssd_tc_shape_supported(d, Q); }

int64_t ssd_chunked_scratch_floats(int64_t chunks, int64_t Q, const SsdDims& d) {
  // cs, C·Bᵀ, states, and (tensor-core path) each chunk's B transposed, the handoff flags and ticket
  // (a multiple of 4: what follows in the backward's scratch keeps 16-byte alignment)
  const int64_t n = chunks * (d.H * Q + d.G * Q * Q + static_cast<int64_t>(d.H) * d.P * d.N +
                              static_cast<int64_t>(d.G) * d.N * Q + d.H) +
                    1;
  return (n + 3) / 4 * 4;
}

void ssd_chunk_transpose(float* out, const SsdIn& in, int64_t col, const SsdDims& d, const ChunkTable& ct,
                         cudaStream_t s) {
  const int gn = d.G * d.N;
  transpose_bc_kernel<<<dim3((ct.Q + 31) / 32, (gn + 31) / 32, ct.count), 256, 0, s>>>(out, in.xbc, in.stride, col,
                                                                                      gn, ct);
  PCM_CUDA_LAUNCH();
}

void ssd_chunked(float* y, const SsdIn& in, void* state, bool state_bf16, int64_t slot_stride, const SsdDims& d,
                 const ChunkTable& ct, const int32_t* seq_slot, int32_t seqs, float* scratch, bool tf32,
                 cudaStream_t s) {
  check_ssd_dims(d);
  PCM_CHECK(ct.Q > 0 && ct.Q <= kMaxQ, "CUDA SSD: chunk size {} not supported (at most {})", ct.Q, kMaxQ);
  if (ct.count == 0) return;
  Scratch sc = scratch_of(scratch, ct, d);
  if (in.keep_cs) sc.cs = in.keep_cs;
  if (in.keep_cb) sc.cb = in.keep_cb;
  if (in.keep_states) sc.states = in.keep_states;
  tc::StatePass pass;
  pass.slot = state;
  pass.slot_bf16 = state_bf16;
  pass.slot_stride = slot_stride;
  pass.seq_slot = seq_slot;
  pass.seqs = seqs;
  pass.keep_final = true;
  const Prologue pro = chunk_prologue(sc, scratch, in, d, ct, tf32, &pass, s);
  const bool use_tc = pro.tc;
  if (!pro.pass_done) {
    dim3 pass_grid(blocks_for(static_cast<int64_t>(d.P) * d.N, 256), d.H, seqs);
    if (state_bf16)
      state_pass_kernel<<<pass_grid, 256, 0, s>>>(sc.states, sc.cs, static_cast<__nv_bfloat16*>(state), true,
                                                  slot_stride, d, ct, seq_slot);
    else
      state_pass_kernel<<<pass_grid, 256, 0, s>>>(sc.states, sc.cs, static_cast<float*>(state), true, slot_stride, d,
                                                  ct, seq_slot);
    PCM_CUDA_LAUNCH();
  }
  const unsigned qt = static_cast<unsigned>((ct.Q + kTile - 1) / kTile),
                 pt = static_cast<unsigned>((d.P + kTile - 1) / kTile);
  const dim3 out_grid(pt, qt, ct.count * d.H);
  if (in.xbc_bf16)
    tc::chunk_output_bf16(y, sc.cs, sc.cb, sc.states, in, d, ct, s);
  else if (use_tc)
    tc::chunk_output(y, sc.cs, sc.cb, sc.states, in, d, ct, s);
  else if (tf32)
    output_kernel<TensorAcc><<<out_grid, kThreads, 0, s>>>(y, sc, in, d, ct);
  else
    output_kernel<SimtAcc><<<out_grid, kThreads, 0, s>>>(y, sc, in, d, ct);
  PCM_CUDA_LAUNCH();
}

}  // namespace pcm::cuda
