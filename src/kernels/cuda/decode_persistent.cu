// Decode at one row as one persistent launch (bench/cuda_notes.md, decode v27): every layer's in_proj GEMV, SSD step
// and out_proj GEMV in a cooperative kernel of one 16-warp block per SM, with a grid barrier at each of a layer's
// three global dependencies (in_proj's RMSNorm needs the whole residual, a head's step its x, B, C and dt, the gated
// norm every head of its group) where the three-launch path has a launch boundary. At one row each of those
// boundaries cost ~10 µs of ramp and tail (decode v25); here the weights never wait on one: each warp streams its
// fixed rows of every projection, in order, through a ring of bulk copies into shared memory, and the ring runs
// ahead across the barriers and the step into the next projection's rows.
// Same bits as the three-launch path: each weight row's dot product is one warp's with the same lane-strided order
// (decode_fused.cu), the RMSNorm's sum of squares has its 256-thread partition, the step its 16-warp one.
#include <algorithm>

#include "kernels/cuda/bulk_copy.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/decode_rows.cuh"
#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/grid_barrier.cuh"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/ssd_step_tile.cuh"

namespace pcm::cuda {
namespace {

constexpr int kWarps = 16, kThreads = kWarps * 32;
constexpr int kNormThreads = 256;  // decode_fused.cu's block: its prologues' partition
constexpr int kChunk = 256;        // 16-byte words a ring stage holds (4 KiB)
constexpr int kStages = 3;         // per warp: 16 x 3 x 4 KiB = 192 KiB in flight per SM
constexpr int64_t kRingBytes = int64_t{kWarps} * kStages * kChunk * 16;

// The projections in the order every warp streams them: 2l is layer l's in_proj, 2l + 1 its out_proj.
struct Projections {
  const DeviceLayer* layers;
  int count;                          // 2 L
  int64_t n_in, k8_in, n_out, k8_out;  // rows and 16-byte words per row

  __device__ const uint4* weights(int i) const {
    const DeviceLayer& l = layers[i >> 1];
    return static_cast<const uint4*>((i & 1) ? l.out_proj : l.in_proj);
  }
  __device__ int64_t rows(int i) const { return (i & 1) ? n_out : n_in; }
  __device__ int64_t k8(int i) const { return (i & 1) ? k8_out : k8_in; }
};

// One warp's weight stream: its rows row0, row0 + stride, ... of each projection in turn, a chunk per ring stage.
// Lane 0 keeps kStages chunks asked for (the cursor fields are lane 0's); every lane takes them in the same order.
struct WeightStream {
  Projections pr;
  uint4* ring;     // [kStages][kChunk] of this warp
  uint64_t* full;  // [kStages]
  int64_t row0, stride;
  int i = 0;                 // lane 0: the projection, row index and chunk of the next ask
  int64_t j = 0, c = 0;
  const uint4* w = nullptr;  // lane 0: projection i's weights (read from the table once per projection)
  int64_t asked = 0, taken = 0;

  __device__ void ask() {
    while (i < pr.count && row0 + j * stride >= pr.rows(i)) ++i, j = 0, c = 0, w = nullptr;
    if (i >= pr.count) return;
    if (!w) w = pr.weights(i);
    const int64_t k8 = pr.k8(i), len = min(static_cast<int64_t>(kChunk), k8 - c * kChunk);
    const int st = static_cast<int>(asked % kStages);
    bulk_load_once(ring + st * kChunk, w + (row0 + j * stride) * k8 + c * kChunk, static_cast<uint32_t>(len * 16),
                   full + st);
    ++asked;
    if (++c * kChunk >= k8) ++j, c = 0;
  }
  __device__ const uint4* take() {
    const int st = static_cast<int>(taken % kStages);
    barrier_wait(&full[st], static_cast<uint32_t>((taken / kStages) & 1));
    return ring + st * kChunk;
  }
  __device__ void release(int lane) {  // every lane has read the stage: ask for the next chunk into it
    __syncwarp();
    ++taken;
    if (lane == 0) ask();
  }
};

// Projection i at one row: the prologue builds its input in xs, then each warp's rows through its stream.
template <class Pro, class Epi>
__device__ void project(WeightStream& ws, int i, const Pro& pro, const Epi& epi, uint4* xs) {
  const int lane = threadIdx.x & 31;
  const int64_t k8 = ws.pr.k8(i), n = ws.pr.rows(i), chunks = (k8 + kChunk - 1) / kChunk;
  pro.template build<1>(reinterpret_cast<__nv_bfloat16*>(xs), k8 * 8);  // ends with __syncthreads
  for (int64_t row = ws.row0; row < n; row += ws.stride) {
    float acc = 0.0f;
    for (int64_t c = 0; c < chunks; ++c) {
      const uint4* w = ws.take();
      const int64_t i0 = c * kChunk, len = min(static_cast<int64_t>(kChunk), k8 - i0);
#pragma unroll
      for (int u = 0; u < kChunk / 32; ++u) {
        const int idx = lane + 32 * u;
        if (idx < len) acc += dot8(w[idx], xs[i0 + idx]);
      }
      ws.release(lane);
    }
    acc = warp_sum(acc);
    if (lane == 0) epi.store(0, row, acc);
  }
}

// Head h's [P, N] state of layer l in the row's slot.
template <class S>
__device__ S* state_tile(const PersistentDecode& a, int slot, int l, int h) {
  const int64_t PN = static_cast<int64_t>(a.dims.P) * a.dims.N;
  return static_cast<S*>(a.ssm) + ((static_cast<int64_t>(slot) * a.L + l) * a.dims.H + h) * PN;
}

// Layer l's step, a head per block (heads h, h + grid, ...): the gated step (g = y · silu(z) into y, Σ g² per head
// into ssq) on the state in global memory, asked into L2 while the layer's in_proj ran (prefetch_state).
template <class S, int V, int J>
__device__ void step_heads(const PersistentDecode& a, int l, int lr, float* red) {
  const SsdDims& d = a.dims;
  const int slot = *a.slot;
  const DeviceLayer& lw = a.layers[l];
  const SsdIn in{a.xbc, a.conv_dim, a.dt, lw.A, lw.D};
  const DecodeGate gate{a.zx, a.d_inner + a.conv_dim + d.H, a.ssq};
  for (int h = blockIdx.x; h < d.H; h += gridDim.x) {
    float* yb = a.y + static_cast<int64_t>(h) * d.P;
    if (slot < 0) {  // padding row: no state change
      for (int p = threadIdx.x; p < d.P; p += blockDim.x) yb[p] = 0.0f;
      if (threadIdx.x == 0) a.ssq[h] = 0.0f;
      continue;
    }
    S* st = state_tile<S>(a, slot, l, h);
    const float ss = step_tile<S, V, J>(st, st, yb, 0, h, in, d, RawDt{}, gate, lr, [] {});
    write_head_ssq(ss, red, a.ssq + h);
    __syncthreads();  // red is rewritten by the block's next head
  }
}

template <class S>
__device__ void prefetch_state(const PersistentDecode& a, int l) {
  const SsdDims& d = a.dims;
  const int slot = *a.slot;
  if (slot < 0) return;
  const int64_t bytes = static_cast<int64_t>(d.P) * d.N * sizeof(S);
  for (int h = blockIdx.x; h < d.H; h += gridDim.x) {
    const char* tile = reinterpret_cast<const char*>(state_tile<S>(a, slot, l, h));
    for (int64_t off = threadIdx.x * 128; off < bytes; off += kThreads * 128) prefetch_l2(tile + off);
  }
}

template <class S, int V, int J>
__global__ void __launch_bounds__(kThreads, 1) decode_persistent_kernel(PersistentDecode a, unsigned* barrier, int lr) {
  extern __shared__ __align__(128) uint4 smem[];  // rings [kWarps][kStages][kChunk], then the projection's input
  __shared__ uint64_t full[kWarps][kStages];
  __shared__ float red[kWarps];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  uint4* xs = smem + kWarps * kStages * kChunk;
  const int64_t H = a.dims.H, dpr = a.d_inner + a.conv_dim + H;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kWarps;
  // The projections built in place, not as a named local copied in: nvcc 13.0 compiled `const Projections pr{a.layers,
  // 2 * a.L, ...}; WeightStream ws{pr, ...}` into ws.pr read from the first 48 bytes of `a` (whose first two fields
  // match pr's), so every copy came from a garbage address (decode v27's illegal address, bench/cuda_notes.md).
  WeightStream ws{Projections{a.layers, 2 * a.L, dpr, a.d / 8, a.d, a.d_inner / 8}, smem + warp * kStages * kChunk,
                  full[warp], static_cast<int64_t>(blockIdx.x) * kWarps + warp, stride};
  if (lane == 0) {  // weights never depend on the step's inputs: the first chunks before anything else
    for (int st = 0; st < kStages; ++st) barrier_init(&full[warp][st]);
    for (int st = 0; st < kStages; ++st) ws.ask();
  }
  unsigned barriers = 0;
  const auto sync = [&] { grid_barrier(barrier, ++barriers * gridDim.x); };
  for (int l = 0; l < a.L; ++l) {
    const DeviceLayer& lw = a.layers[l];
    if (l > 0) sync();  // the previous out_proj's residual rows, from every block
    prefetch_state<S>(a, l);
    const int64_t window = a.conv_dim * a.K;  // one slot's conv window of a layer
    // z | xBC | dt of the row (z_stride dpr), the layer's windows and conv weights, the row's slot and position
    const DecodeInProjOut o{a.zx,   dpr,      a.xbc,      a.dt,    lw.in_bias, a.d_inner, a.conv_dim, H,
                            a.conv + l * window, a.L * window, lw.conv_w, lw.conv_b, a.K,  a.slot, a.pos,
                            lw.dt_bias, a.dt_lo, a.dt_hi};
    project(ws, 2 * l, NormPrologue<kNormThreads, kThreads>{a.resid, lw.norm, a.eps}, InProjEpilogue{o}, xs);
    sync();  // x, B, C, dt and z of every head
    step_heads<S, V, J>(a, l, lr, red);
    sync();  // every head's g and Σ g²
    project(ws, 2 * l + 1, ScalePrologue<kNormThreads, kThreads>{a.y, a.ssq, H, lw.gate_norm, a.group, a.eps},
            ResidualEpilogue{a.resid, lw.out_bias, a.d}, xs);
  }
}

size_t smem_bytes(int64_t d, int64_t d_inner) { return kRingBytes + std::max(d, d_inner) * 2; }

template <class S, int V, int J>
void launch(const PersistentDecode& a, unsigned* barrier, int lr, cudaStream_t s) {
  // the current device's SMs (not cached: a process may drive GPUs of several sizes)
  const int sms = device_attribute(cudaDevAttrMultiProcessorCount);
  PCM_CUDA(cudaMemsetAsync(barrier, 0, sizeof(unsigned), s));
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(static_cast<unsigned>(sms));
  cfg.blockDim = dim3(kThreads);
  cfg.dynamicSmemBytes = smem_bytes(a.d, a.d_inner);
  cfg.stream = s;
  // Cooperative: the grid barriers need every block resident (an error, not a hang, where they cannot be)
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeCooperative;
  attr[0].val.cooperative = 1;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  PCM_CUDA(cudaLaunchKernelEx(&cfg, decode_persistent_kernel<S, V, J>, a, barrier, lr));
}

template <class F>
void for_each_kernel(F&& f) {  // every instantiation step_lanes can pick
  f(decode_persistent_kernel<float, 4, 1>);
  f(decode_persistent_kernel<float, 4, 2>);
  f(decode_persistent_kernel<__nv_bfloat16, 8, 1>);
  f(decode_persistent_kernel<__nv_bfloat16, 8, 2>);
}

// The shapes the kernel takes (as the three-launch path runs them: dims.H < 1024 keeps ssd_decode's 16-warp step).
bool shape_supported(int64_t d, int64_t d_inner, int64_t group, int64_t K, const SsdDims& dims, bool state_bf16) {
  int J = 0;
  const int lr = state_bf16 ? step_lanes<__nv_bfloat16>(dims.N, &J) : step_lanes<float>(dims.N, &J);
  const int64_t dpr = 2 * d_inner + 2 * int64_t{dims.G} * dims.N + dims.H;  // in_proj's rows: z's row stride
  const int64_t layer_state_bytes = int64_t{dims.H} * dims.P * dims.N * (state_bf16 ? 2 : 4);
  return lr != 0 && layer_state_bytes % 16 == 0 && dims.H < 1024 && dims.G > 0 && dims.H % dims.G == 0 &&
         decode_fused_supported(1, d, d_inner, group, dpr, K);
}

}  // namespace

bool decode_persistent_prepare(int64_t d, int64_t d_inner, int64_t group, int64_t K, const SsdDims& dims,
                               bool state_bf16) {
  if (!shape_supported(d, d_inner, group, K, dims, state_bf16)) return false;
  const int optin = device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin);
  const size_t smem = smem_bytes(d, d_inner);
  if (!device_attribute(cudaDevAttrCooperativeLaunch) || smem + 4096 > static_cast<size_t>(optin)) return false;  // 4 KiB: room for the static arrays
  // A block per SM must fit (MPS thread limits or green contexts may leave less): else the launch fails mid-step.
  int resident = 1;
  for_each_kernel([&](auto kernel) {
    PCM_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, optin - 4096));
    int n = 0;
    PCM_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, kThreads, smem));
    resident = std::min(resident, n);
  });
  return resident >= 1;
}

void decode_persistent(const PersistentDecode& a, unsigned* barrier, cudaStream_t s) {
  PCM_CHECK(shape_supported(a.d, a.d_inner, a.group, a.K, a.dims, a.state_bf16),
            "persistent decode: shape d={} d_inner={} H={} P={} N={} G={} K={} not supported here", a.d, a.d_inner,
            a.dims.H, a.dims.P, a.dims.N, a.dims.G, a.K);
  int J = 0;
  if (a.state_bf16) {
    const int lr = step_lanes<__nv_bfloat16>(a.dims.N, &J);
    return J == 1 ? launch<__nv_bfloat16, 8, 1>(a, barrier, lr, s) : launch<__nv_bfloat16, 8, 2>(a, barrier, lr, s);
  }
  const int lr = step_lanes<float>(a.dims.N, &J);
  return J == 1 ? launch<float, 4, 1>(a, barrier, lr, s) : launch<float, 4, 2>(a, barrier, lr, s);
}

}  // namespace pcm::cuda
