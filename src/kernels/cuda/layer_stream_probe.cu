// The bound a whole-step persistent kernel could reach at one decode row (benchmarks; bench/cuda_notes.md decode
// v26): each layer's two weight streams (in_proj [n_in, k_in], out_proj [n_out, k_out], bf16) as GEMVs in one launch
// of one block per SM, a grid barrier before each GEMV (the RMSNorm and the gated norm need whole vectors), and each
// warp's next weights requested into shared memory before it waits there. No norms, conv or SSD step: only what
// the weight stream and the two global dependencies of a layer cost, against the per-launch chain the model runs.
//
// Each warp owns a ring of kStages chunks of kChunk bytes (cp.async.bulk, mbarrier completion; bulk_copy.cuh) and the
// fixed rows warp, warp + W, ... (W = the grid's warps) of every phase. Lane 0 keeps kStages chunks requested; with
// `prefetch`, those are the next phase's first chunks while the warp waits at the barrier.
#include <algorithm>

#include "kernels/cuda/bulk_copy.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/grid_barrier.cuh"
#include "kernels/cuda/ops.h"

namespace pcm::cuda {
namespace {

constexpr int kWarps = 16, kThreads = kWarps * 32;
constexpr int kChunk = 4096;                 // bytes a ring stage holds
constexpr int kChunk16 = kChunk / 16;        // 16-byte words per stage
constexpr int kStages = 3;                   // per warp: 16 x 3 x 4 KiB = 192 KiB per SM
constexpr int64_t kRingBytes = int64_t{kWarps} * kStages * kChunk;

struct Phases {
  const uint4* const* w_in;   // [layers] of [n_in, k_in]
  const uint4* const* w_out;  // [layers] of [n_out, k_out]
  float* y_in;                // [n_in]: phase 2l's output; its first k_out values are phase 2l + 1's input
  float* y_out;               // [n_out]: phase 2l + 1's output; its first k_in values are the next layer's input
  int64_t n_in, k_in, n_out, k_out;

  __device__ bool is_in(int p) const { return (p & 1) == 0; }
  __device__ const uint4* weights(int p) const { return is_in(p) ? w_in[p >> 1] : w_out[p >> 1]; }
  __device__ int64_t rows(int p) const { return is_in(p) ? n_in : n_out; }
  __device__ int64_t k(int p) const { return is_in(p) ? k_in : k_out; }
};

// One warp's chunks in order: phase p, its j-th row (row0 + j * stride), chunk c of that row.
struct ChunkCursor {
  int p = 0;
  int64_t j = 0, c = 0;
};

// Lane 0: the next chunk of `cur` into its stage (g % kStages), then advance; false when the phases are done.
__device__ bool request(const Phases& ph, int p_end, ChunkCursor& cur, int64_t row0, int64_t stride, uint4* ring,
                        uint64_t* full, int64_t g) {
  while (cur.p < p_end && row0 + cur.j * stride >= ph.rows(cur.p)) cur = {cur.p + 1, 0, 0};
  if (cur.p >= p_end) return false;
  const int64_t k16 = ph.k(cur.p) / 8, row = row0 + cur.j * stride;
  const int64_t len = min(static_cast<int64_t>(kChunk16), k16 - cur.c * kChunk16);
  const int st = static_cast<int>(g % kStages);
  bulk_load_once(ring + st * kChunk16, ph.weights(cur.p) + row * k16 + cur.c * kChunk16, static_cast<uint32_t>(len * 16),
                 full + st);
  if (++cur.c * kChunk16 >= k16) cur = {cur.p, cur.j + 1, 0};
  return true;
}

__global__ void __launch_bounds__(kThreads, 1)
    layer_stream_kernel(Phases ph, int p_begin, int p_end, bool prefetch, unsigned* barrier) {
  extern __shared__ __align__(128) uint4 smem[];  // rings [kWarps][kStages][kChunk16], then x (bf16)
  __shared__ uint64_t full_bars[kWarps][kStages];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  uint4* ring = smem + warp * kStages * kChunk16;
  uint64_t* full = full_bars[warp];
  __nv_bfloat16* xs = reinterpret_cast<__nv_bfloat16*>(smem + kWarps * kStages * kChunk16);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kWarps;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kWarps + warp;
  ChunkCursor cur{p_begin, 0, 0};
  int64_t requested = 0;  // chunks asked for so far (lane 0's count; the warp's g runs behind it)
  if (lane == 0) {
    for (int st = 0; st < kStages; ++st) barrier_init(&full[st]);
    // Before the first phase's input exists: weights only (the first barrier below orders the input).
    while (requested < kStages && request(ph, prefetch ? p_end : p_begin + 1, cur, row0, stride, ring, full, requested))
      ++requested;
  }
  int64_t g = 0;
  for (int p = p_begin; p < p_end; ++p) {
    // The phase's input: the previous phase's output, complete across the grid.
    if (p > p_begin) grid_barrier(barrier, static_cast<unsigned>(p - p_begin) * gridDim.x);
    const int64_t k = ph.k(p);
    const float* src = ph.is_in(p) ? ph.y_out : ph.y_in;
    // __ldcg: other SMs wrote it; this SM's L1 may still hold the previous layer's values
    for (int64_t i = threadIdx.x; i < k; i += kThreads) xs[i] = __float2bfloat16(tanhf(__ldcg(src + i)));
    __syncthreads();
    if (!prefetch && lane == 0) {  // this phase's first chunks only now
      while (requested - g < kStages && request(ph, p + 1, cur, row0, stride, ring, full, requested)) ++requested;
    }
    __syncwarp();
    const uint4* xv = reinterpret_cast<const uint4*>(xs);
    const int64_t k16 = k / 8, chunks = (k16 + kChunk16 - 1) / kChunk16;
    float* y = ph.is_in(p) ? ph.y_in : ph.y_out;
    for (int64_t row = row0; row < ph.rows(p); row += stride) {
      float acc = 0.0f;
      for (int64_t c = 0; c < chunks; ++c, ++g) {
        const int st = static_cast<int>(g % kStages);
        barrier_wait(&full[st], static_cast<uint32_t>((g / kStages) & 1));
        const uint4* w = ring + st * kChunk16;
        const int64_t i0 = c * kChunk16, len = min(static_cast<int64_t>(kChunk16), k16 - i0);
#pragma unroll
        for (int u = 0; u < kChunk16 / 32; ++u) {
          const int i = lane + 32 * u;
          if (i < len) acc += dot8(w[i], xv[i0 + i]);
        }
        __syncwarp();  // every lane has read the stage
        if (lane == 0 && request(ph, prefetch ? p_end : p + 1, cur, row0, stride, ring, full, requested)) ++requested;
      }
      acc = warp_sum(acc);
      if (lane == 0) y[row] = acc;
    }
    __syncthreads();  // xs is rewritten after the barrier
  }
}

}  // namespace

void layer_stream_probe(float* y_in, float* y_out, const void* const* w_in, const void* const* w_out, int layers,
                        int64_t n_in, int64_t k_in, int64_t n_out, int64_t k_out, bool prefetch, bool one_launch,
                        unsigned* barrier, cudaStream_t s) {
  PCM_CHECK(k_in % 8 == 0 && k_out % 8 == 0 && k_in <= n_out && k_out <= n_in,
            "layer stream probe: inputs of {} / {} columns from outputs of {} / {} rows", k_in, k_out, n_out, n_in);
  const size_t smem = static_cast<size_t>(kRingBytes) + static_cast<size_t>(std::max(k_in, k_out)) * 2;
  PCM_CUDA(cudaFuncSetAttribute(layer_stream_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  const int sms = device_attribute(cudaDevAttrMultiProcessorCount);
  int resident = 0;
  PCM_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&resident, layer_stream_kernel, kThreads, smem));
  PCM_CHECK(resident >= 1, "layer stream probe: a block of {} threads with {} bytes of shared memory does not fit", kThreads,
            smem);
  const Phases ph{reinterpret_cast<const uint4* const*>(w_in), reinterpret_cast<const uint4* const*>(w_out), y_in, y_out,
                  n_in, k_in, n_out, k_out};
  // one_launch: every phase in one kernel (grid barriers); else a launch per phase (the boundary is the barrier).
  const int phases = 2 * layers;
  for (int p0 = 0; p0 < phases; p0 += one_launch ? phases : 1) {
    const int p1 = one_launch ? phases : p0 + 1;
    if (one_launch) PCM_CUDA(cudaMemsetAsync(barrier, 0, sizeof(unsigned), s));
    // Cooperative: the grid barrier needs every block resident (an error, not a hang, where they cannot be)
    Phases a0 = ph;
    int a1 = p0, a2 = p1;
    bool a3 = prefetch;
    unsigned* a4 = barrier;
    void* args[] = {&a0, &a1, &a2, &a3, &a4};
    PCM_CUDA(cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(layer_stream_kernel), dim3(sms), dim3(kThreads),
                                         args, smem, s));
  }
}

}  // namespace pcm::cuda
