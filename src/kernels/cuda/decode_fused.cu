// Decode at a few rows (<= kGemvMaxRows) with bf16 weights: each projection GEMV with the row-wise
// kernels around it folded in, so a layer is three launches (in_proj, SSD step, out_proj) instead of seven:
//   in_proj:  RMSNorm of the residual rows (prologue) · W_in, then per output feature (epilogue):
//             z stored, xBC through the conv window + SiLU, dt through softplus + bias + clamp
//   out_proj: grouped gated RMSNorm (prologue: the scale only, the SSD step gated and summed) · W_out,
//             residual add (epilogue)
//   head:     RMSNorm (prologue) · lm_head
// At batch 1 the step is bound by streaming the weights, and the small kernels were ~30 µs of latency
// per layer. A persistent grid (2 blocks per SM) builds the normalised rows once per block in shared
// memory (bf16, as the unfused path rounds them), then each warp streams whole weight rows: short rows
// with 16-byte register loads, long ones (out_proj) through a ring of bulk copies into shared memory. The
// kernels are launched with programmatic dependent launch: before waiting for the previous kernel, each
// warp already has its first weights loaded or requested.
#include <algorithm>

#include "kernels/cuda/bulk_copy.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/decode_rows.cuh"
#include "kernels/cuda/decode_trace.cuh"
#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/ops.h"

namespace pcm::cuda {
namespace {

constexpr int kWarps = 8, kThreads = kWarps * 32;
constexpr int kSlab = 16;                  // register loop: 16-byte weight loads in flight per lane (an 8 KiB row per warp)
constexpr int64_t kPrefetchBytes = 16384;  // register loop: of each warp's first row, into L2 before the wait
constexpr int kChunk = 256;                // ring: 16-byte words per chunk of a weight row (4 KiB)
constexpr int kStages = 2;                 // ring: chunks in flight per warp
constexpr int64_t kRingBytes = int64_t{kWarps} * kStages * kChunk * 16;
// Rows this long take the ring: out_proj's 16 KiB rows are ~2 per warp, so the register loop's ramp at
// each row is not amortised (H200, v9 call 2: out_proj 28.6 -> 23.9 µs through the ring, while in_proj's
// 8 KiB rows, ~9 per warp, ran 43.0 µs with registers and 51.5 through the ring).
constexpr int64_t kRingRowBytes = 16384;

// ---- the persistent GEMV ---------------------------------------------------------------------------------

// Each warp walks the chunks of its rows (row, row + stride, ...; kChunk 16-byte words of one weight row
// per chunk) through a ring of kStages shared-memory slots: the copy engine fills a slot (one bulk copy,
// completion on the slot's mbarrier) while the lanes compute on the others, and the slot is asked for
// again as soon as the warp has read it. So every warp keeps kStages chunks in flight at all times, the
// row ends and epilogues included, with no registers held: 128 KiB per SM at 2 blocks of 8 warps, where
// register-staged loads kept at most 64 KiB and less around each row's end (bench/cuda_notes.md, v9).
struct Ring {
  uint4* slots;    // [kStages][kChunk] of this warp
  uint64_t* bars;  // [kStages]
  const uint4* W;
  int64_t k8, row0, stride, chunks, total;  // this warp's chunks: total = its rows x chunks per row

  // Lane 0: ask for chunk g (row row0 + (g / chunks) * stride, part g % chunks) into slot g % kStages.
  __device__ void request(int64_t g) const {
    const int64_t r = row0 + (g / chunks) * stride, c = g % chunks;
    const int64_t len = min(static_cast<int64_t>(kChunk), k8 - c * kChunk);
    const int slot = static_cast<int>(g % kStages);
    bulk_load_once(slots + slot * kChunk, W + r * k8 + c * kChunk, static_cast<uint32_t>(len * 16), bars + slot);
  }
};

// Rows handed out at run time (`queue`: one word, rows taken after the first round in the low half and warps done in
// the high half; zero between launches): a warp's first row is fixed (warp index, loaded before the wait), each later
// one is the next free row, so the warps on fast SMs take more rows and the kernel's end is not ragged (decode v16's
// trace: half of in_proj's blocks were done 6 µs before its last, warps with equal row counts included). Whole rows,
// so each dot product is still one warp's in one order: the same bits whichever warp computes it. The last warp out
// zeroes the queue. Asks and done counts are atomics on the one word, so they are ordered by coherence: every warp's
// asks come before its own done count, hence before the last one, with no fence (two words needed one: 1.5 % at B=1).
struct RowQueue {
  unsigned long long* q;  // null: the fixed rows row0, row0 + stride, ...
  int64_t warps;          // the grid's: the first round of rows, and the fixed rows' stride

  // Lane 0 asks for the next row; the answer is read (next()) one row later, so the atomic's latency hides.
  __device__ unsigned ask(int lane) const {
    return q && lane == 0 ? static_cast<unsigned>(atomicAdd(q, 1ull)) : 0u;  // low half: rows taken
  }
  __device__ int64_t next(unsigned asked, int64_t row) const {
    return q ? warps + __shfl_sync(0xffffffffu, asked, 0) : row + warps;
  }
  __device__ void done(int lane) const {
    if (!q || lane != 0) return;
    if ((atomicAdd(q, 1ull << 32) >> 32) == static_cast<unsigned long long>(warps) - 1)
      *q = 0;  // every warp has taken its last row
  }
};

// Register loop (rows under kRingRowBytes): each warp streams its rows with kSlab 16-byte loads per lane,
// the first slab loaded and the first row prefetched into L2 before the wait; the compiler keeps the next
// slab's loads in flight (114-126 registers; capping them cost 10 µs of 43 on in_proj, v9 call 1).
template <int R, class Pro, class Epi>
__device__ void gemv_registers(const Pro& pro, const Epi& epi, const uint4* W, int64_t n, int64_t k8, uint4* xs,
                               unsigned long long* queue) {
  const int lane = threadIdx.x & 31;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kWarps;
  const RowQueue rows{queue, stride};
  int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  uint4 wv[kSlab];
  if (row < n) {
    const char* first = reinterpret_cast<const char*>(W + row * k8);
    const int64_t bytes = min(k8 * 16, kPrefetchBytes);
    for (int64_t off = lane * 128; off < bytes; off += 32 * 128) prefetch_l2(first + off);
#pragma unroll
    for (int u = 0; u < kSlab; ++u) {
      const int64_t i = lane + 32 * u;
      wv[u] = i < k8 ? __ldcs(W + row * k8 + i) : make_uint4(0, 0, 0, 0);
    }
  }
  pdl_wait();
  trace_mark(kStampWait);
  pdl_trigger();
  pro.template build<R>(reinterpret_cast<__nv_bfloat16*>(xs), k8 * 8);
  trace_mark(kStampReady);
  bool loaded = true;
  unsigned asked = row < n ? rows.ask(lane) : 0u;
  while (row < n) {
    const uint4* w = W + row * k8;
    float acc[R];
#pragma unroll
    for (int r = 0; r < R; ++r) acc[r] = 0.0f;
    for (int64_t i0 = 0; i0 < k8; i0 += 32 * kSlab) {
      if (!loaded) {
#pragma unroll
        for (int u = 0; u < kSlab; ++u) {
          const int64_t i = i0 + lane + 32 * u;
          wv[u] = i < k8 ? __ldcs(w + i) : make_uint4(0, 0, 0, 0);  // streamed once: do not keep
        }
      }
      loaded = false;
#pragma unroll
      for (int u = 0; u < kSlab; ++u) {
        const int64_t i = i0 + lane + 32 * u;
        if (i < k8) {
#pragma unroll
          for (int r = 0; r < R; ++r) acc[r] += dot8(wv[u], xs[r * k8 + i]);
        }
      }
    }
    // The next row's first slab before this row's reduction and epilogue (the conv step's dependent
    // reads and writes): its latency hides theirs. The compiler cannot move these loads above the
    // epilogue's stores itself.
    const int64_t next = rows.next(asked, row);
    if (next < n) {
      const uint4* nw = W + next * k8;
#pragma unroll
      for (int u = 0; u < kSlab; ++u) {
        const int64_t i = lane + 32 * u;
        wv[u] = i < k8 ? __ldcs(nw + i) : make_uint4(0, 0, 0, 0);
      }
      loaded = true;
      asked = rows.ask(lane);
    }
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const float v = warp_sum(acc[r]);
      if (lane == r) epi.store(r, row, v);
    }
    row = next;
  }
  rows.done(lane);
}

// Ring (rows of kRingRowBytes and more, i.e. few rows per warp): see Ring above.
template <int R, class Pro, class Epi>
__device__ void gemv_ring(const Pro& pro, const Epi& epi, const uint4* W, int64_t n, int64_t k8, uint4* smem) {
  __shared__ uint64_t bars[kWarps][kStages];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  uint4* xs = smem + kWarps * kStages * kChunk;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kWarps, chunks = (k8 + kChunk - 1) / kChunk;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kWarps + warp;
  const int64_t rows = row0 < n ? (n - 1 - row0) / stride + 1 : 0;
  const Ring ring{smem + warp * kStages * kChunk, bars[warp], W, k8, row0, stride, chunks, rows * chunks};
  // Before the wait: weights never depend on the previous kernel.
  if (lane == 0) {
#pragma unroll
    for (int st = 0; st < kStages; ++st) barrier_init(&bars[warp][st]);
    for (int64_t g = 0; g < min(static_cast<int64_t>(kStages), ring.total); ++g) ring.request(g);
  }
  pdl_wait();
  trace_mark(kStampWait);
  pdl_trigger();
  pro.template build<R>(reinterpret_cast<__nv_bfloat16*>(xs), k8 * 8);  // ends with __syncthreads
  trace_mark(kStampReady);
  int64_t g = 0;
  for (int64_t row = row0; row < n; row += stride) {
    float acc[R];
#pragma unroll
    for (int r = 0; r < R; ++r) acc[r] = 0.0f;
    for (int64_t c = 0; c < chunks; ++c, ++g) {
      const int slot = static_cast<int>(g % kStages);
      barrier_wait(&bars[warp][slot], static_cast<uint32_t>((g / kStages) & 1));
      const uint4* w = ring.slots + slot * kChunk;
      const int64_t i0 = c * kChunk, len = min(static_cast<int64_t>(kChunk), k8 - i0);
#pragma unroll
      for (int u = 0; u < kChunk / 32; ++u) {
        const int i = lane + 32 * u;
        if (i < len) {
          const uint4 wv = w[i];
#pragma unroll
          for (int r = 0; r < R; ++r) acc[r] += dot8(wv, xs[r * k8 + i0 + i]);
        }
      }
      __syncwarp();  // every lane has read the slot
      if (lane == 0 && g + kStages < ring.total) ring.request(g + kStages);
    }
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const float v = warp_sum(acc[r]);
      if (lane == r) epi.store(r, row, v);
    }
  }
}

template <int R, bool kUseRing, class Pro, class Epi>
__global__ void __launch_bounds__(kThreads, 2) fused_gemv_kernel(Pro pro, Epi epi, const uint4* W, int64_t n,
                                                                 int64_t k8, unsigned long long* queue) {
  extern __shared__ uint4 smem[];  // ring path: the rings [kWarps][kStages][kChunk], then xs; else xs only
  trace_mark(kStampStart);
  if constexpr (kUseRing)
    gemv_ring<R>(pro, epi, W, n, k8, smem);
  else
    gemv_registers<R>(pro, epi, W, n, k8, smem, queue);
  trace_block(Epi::kTraceKind, W);
}

int sm_count() {
  static const int count = device_attribute(cudaDevAttrMultiProcessorCount);
  return count;
}

// Dynamic shared memory a launch may use: 48 KiB (the default limit) less room for the prologues' static
// arrays, whose bytes count against the same limit; raised by decode_fused_prepare.
constexpr int64_t kStaticSmemRoom = 2048, kSmemCap = 200 * 1024;
int64_t g_smem_limit = 48 * 1024 - kStaticSmemRoom;

template <int R, class Pro, class Epi>
void set_smem_limit(int bytes) {
  PCM_CUDA(cudaFuncSetAttribute(fused_gemv_kernel<R, false, Pro, Epi>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                bytes));
  PCM_CUDA(cudaFuncSetAttribute(fused_gemv_kernel<R, true, Pro, Epi>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                bytes));
}

template <class Pro, class Epi>
void set_smem_limits(int bytes) {
  set_smem_limit<1, Pro, Epi>(bytes);
  set_smem_limit<2, Pro, Epi>(bytes);
  set_smem_limit<3, Pro, Epi>(bytes);
  set_smem_limit<4, Pro, Epi>(bytes);
}

template <int R, class Pro, class Epi>
void launch_r(const Pro& pro, const Epi& epi, const void* W, int64_t n, int64_t k, cudaStream_t s,
              unsigned long long* queue, bool pdl) {
  const bool ring = k * 2 >= kRingRowBytes;
  auto* kernel = ring ? fused_gemv_kernel<R, true, Pro, Epi> : fused_gemv_kernel<R, false, Pro, Epi>;
  const size_t smem = static_cast<size_t>((ring ? kRingBytes : 0) + R * k * 2);
  PCM_CHECK(static_cast<int64_t>(smem) <= g_smem_limit,
            "fused decode: {} rows of {} columns need {} bytes of shared memory; decode_fused_prepare allowed {}", R, k,
            smem, g_smem_limit);
  const int64_t blocks = std::min<int64_t>((n + kWarps - 1) / kWarps, 2 * static_cast<int64_t>(sm_count()));
  // The ring path keeps fixed rows (~2 a warp): all its warps would ask at once, which measured slower (decode v18).
  PCM_CUDA(launch_pdl_if(pdl, kernel, dim3(static_cast<unsigned>(blocks)), dim3(kThreads), smem, s, pro, epi,
                         static_cast<const uint4*>(W), n, k / 8, ring ? nullptr : queue));
}

template <class Pro, class Epi>
void launch(int64_t T, const Pro& pro, const Epi& epi, const void* W, int64_t n, int64_t k, cudaStream_t s,
            unsigned long long* queue = nullptr, bool pdl = true) {
  PCM_CHECK(T >= 1 && T <= kGemvMaxRows, "fused decode: {} rows (1..{} supported)", T, kGemvMaxRows);
  PCM_CHECK(k % 8 == 0, "fused decode: {} input columns (a multiple of 8 needed)", k);
  switch (T) {
    case 1: launch_r<1>(pro, epi, W, n, k, s, queue, pdl); break;
    case 2: launch_r<2>(pro, epi, W, n, k, s, queue, pdl); break;
    case 3: launch_r<3>(pro, epi, W, n, k, s, queue, pdl); break;
    default: launch_r<4>(pro, epi, W, n, k, s, queue, pdl); break;
  }
}

}  // namespace

bool decode_fused_supported(int64_t T, int64_t d, int64_t d_inner, int64_t group, int64_t z_stride, int64_t K) {
  // in_proj and the head take d input columns, out_proj d_inner: both rows sets must fit in shared memory.
  const int64_t max_k = std::max(d, d_inner);
  return T >= 1 && T <= kGemvMaxRows && d % 8 == 0 && d_inner % 8 == 0 && group > 0 && group % 4 == 0 &&
         d_inner % group == 0 && d_inner / group <= kMaxGroups && z_stride % 4 == 0 && K >= 1 && K <= kConvMaxK &&
         kRingBytes + kGemvMaxRows * max_k * 2 <= kSmemCap;
}

void decode_fused_prepare(int64_t max_k) {
  const int64_t bytes = kRingBytes + kGemvMaxRows * max_k * 2;
  // Wider inputs are not supported (decode_fused_supported says no): the model keeps the unfused path.
  if (bytes <= g_smem_limit || bytes > kSmemCap) return;
  set_smem_limits<NormPrologue<kThreads>, InProjEpilogue>(static_cast<int>(bytes));
  set_smem_limits<ScalePrologue<kThreads>, ResidualEpilogue>(static_cast<int>(bytes));
  set_smem_limits<NormPrologue<kThreads>, StoreEpilogue>(static_cast<int>(bytes));
  g_smem_limit = bytes;
}

void decode_trace(unsigned long long* buf) {
  PCM_CUDA(cudaMemcpyToSymbol(c_trace, &buf, sizeof buf));
  ssd_decode_trace(buf);
}

void decode_in_proj(const DecodeInProjOut& o, const float* resid, const float* norm_w, float eps, const void* W,
                    int64_t T, int64_t d, cudaStream_t s, unsigned long long* row_queue) {
  if (T == 0) return;
  const int64_t n = o.d_inner + o.conv_dim + o.heads;
  launch(T, NormPrologue<kThreads>{resid, norm_w, eps}, InProjEpilogue{o}, W, n, d, s, row_queue);
}

void decode_out_proj(float* resid, const float* out_bias, const float* g, const float* ssq, int64_t heads,
                     const float* gate_w, int64_t group, float eps, const void* W, int64_t T, int64_t d,
                     int64_t d_inner, cudaStream_t s) {
  if (T == 0) return;
  PCM_CHECK(group > 0 && group % 4 == 0 && d_inner % group == 0 && d_inner / group <= kMaxGroups &&
                heads % (d_inner / group) == 0,
            "fused decode out_proj: groups of {} channels over {} channels and {} heads (whole heads per group, "
            "at most {} groups, a multiple of 4 channels each)", group, d_inner, heads, kMaxGroups);
  launch(T, ScalePrologue<kThreads>{g, ssq, heads, gate_w, group, eps}, ResidualEpilogue{resid, out_bias, d}, W, d,
         d_inner, s);
}

void decode_head(float* logits, const float* resid, const float* norm_w, float eps, const void* W, int64_t T,
                 int64_t V, int64_t d, cudaStream_t s, unsigned long long* row_queue, bool pdl) {
  if (T == 0) return;
  launch(T, NormPrologue<kThreads>{resid, norm_w, eps}, StoreEpilogue{logits, V}, W, V, d, s, row_queue, pdl);
}

}  // namespace pcm::cuda
