// SSD decode: one recurrence step for each (batch row b, head h) on the state slot slots[b]:
//   s[p, n] = exp(dt·A) · s[p, n] + dt · x[p] · B[n],    y[p] = Σ_n s[p, n] · C[n] + D · x[p]
// At large batch the step is a stream over the states (read + write 32 KiB per (b, h) at Codestral's
// shape, fp32), so its speed is the bytes each SM keeps in flight. Each block has the copy engine bring
// its whole [P, N] tile into shared memory (one bulk copy, mbarrier completion) before it waits for the
// kernel that produced x, B, C and dt (programmatic dependent launch; only this kernel writes the state
// during a step): ~6 resident blocks per SM keep ~200 KiB requested without holding registers, where the
// register-staged loads before (v8) kept at most 64 KiB (bench/cuda_notes.md, decode v9).
// Lanes: a row of N values is `lr` lanes, each with J 16-byte packs of V values; a warp takes 32 / lr rows
// at a time. Shapes whose rows are not whole packs (N % V != 0) take V = 1: plain loads, masked columns.
#include <algorithm>

#include "kernels/cuda/bulk_copy.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/decode_trace.cuh"
#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/ssd_chunks.h"
#include "kernels/cuda/ssd_step_tile.cuh"

namespace pcm::cuda {
namespace {

constexpr int kMaxThreads = 512;

// A block per (h, b) tile.
// kThreads / kMinBlocks: the register cap that lets the blocks the shared memory allows be resident.
template <class S, int V, int J, int kThreads, int kMinBlocks>
__global__ void __launch_bounds__(kThreads, kMinBlocks) ssd_step_kernel(float* y, SsdIn in, S* state, int64_t slot_stride,
                                                               SsdDims d, const int32_t* slots, RawDt raw,
                                                               DecodeGate gate, int lr) {
  constexpr bool kBulk = V * sizeof(S) == 16;  // whole 16-byte packs: the tile arrives by one bulk copy
  extern __shared__ __align__(128) unsigned char smem_raw[];
  __shared__ uint64_t bar;
  __shared__ float red[kThreads / 32];
  S* tile = reinterpret_cast<S*>(smem_raw);
  trace_mark(kStampStart);
  const int h = blockIdx.x, b = blockIdx.y;
  const int64_t PN = static_cast<int64_t>(d.P) * d.N;
  const int slot = slots[b];  // copied in before the step
  S* st = state + static_cast<int64_t>(slot < 0 ? 0 : slot) * slot_stride + h * PN;
  if (slot >= 0) {
    if constexpr (kBulk) {
      if (threadIdx.x == 0) {
        barrier_init(&bar);
        bulk_load(tile, st, static_cast<uint32_t>(PN * sizeof(S)), &bar);
      }
    } else {
      for (int64_t i = threadIdx.x; i < PN; i += blockDim.x) tile[i] = st[i];
    }
  }
  // Trigger before the wait: the next kernel may launch once every block of the step has started. At a
  // few rows that is out_proj, whose blocks fit beside the step's and request their first weight chunks
  // while it runs; its own wait still covers everything the step writes (and, through the step's wait,
  // in_proj). At one row the step as a kernel of its own cost ~9 µs of a 70 µs layer, out_proj starting
  // its weight stream only after the step's wait (bench/cuda_notes.md decode v11).
  pdl_trigger();
  pdl_wait();
  trace_mark(kStampWait);
  float* yb = y + b * static_cast<int64_t>(d.H) * d.P + static_cast<int64_t>(h) * d.P;
  float* ssq = gate.z ? gate.ssq + static_cast<int64_t>(b) * d.H + h : nullptr;
  if (slot < 0) {  // padding row: no state change
    for (int p = threadIdx.x; p < d.P; p += blockDim.x) yb[p] = 0.0f;
    if (ssq && threadIdx.x == 0) *ssq = 0.0f;
    return;
  }
  const float ss = step_tile<S, V, J>(tile, st, yb, b, h, in, d, raw, gate, lr, [&] {
    __syncthreads();  // the barrier's initialisation (bulk) or the tile (plain loads) is visible
    if constexpr (kBulk) barrier_wait(&bar, 0);
    trace_mark(kStampReady);
  });
  if (ssq) write_head_ssq(ss, red, ssq);
  trace_block(kTraceStep, state);
}

int max_smem_optin() {
  static const int v = device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin);
  return v;
}

template <class S, int V, int J, int kThreads, int kMinBlocks>
void launch_with(int threads, float* y, const SsdIn& in, S* state, int64_t slot_stride, const SsdDims& d,
                 const int32_t* slots, const RawDt& raw, const DecodeGate& gate, int64_t Bn, int lr, cudaStream_t s) {
  auto* kernel = ssd_step_kernel<S, V, J, kThreads, kMinBlocks>;
  const size_t smem = static_cast<size_t>(d.P) * d.N * sizeof(S);
  const int max_smem = max_smem_optin();
  PCM_CHECK(smem + 1024 <= static_cast<size_t>(max_smem), "CUDA SSD decode: a [{}, {}] state tile needs {} bytes of "
            "shared memory ({} available)", d.P, d.N, smem, max_smem);
  if (smem > 48 * 1024)
    PCM_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  const dim3 grid(static_cast<unsigned>(d.H), static_cast<unsigned>(Bn));
  PCM_CUDA(launch_pdl(kernel, grid, dim3(threads), smem, s, y, in, state, slot_stride, d, slots, raw, gate, lr));
}

template <class S, int V, int J>
void launch(float* y, const SsdIn& in, S* state, int64_t slot_stride, const SsdDims& d, const int32_t* slots,
            const RawDt& raw, const DecodeGate& gate, int64_t Bn, int lr, cudaStream_t s) {
  // Few (b, h) tiles: 16 warps per tile, so each warp has a few rows (latency). Many tiles: shared memory
  // bounds the blocks per SM (6 of 32 KiB fp32, 13 of 16 KiB bf16 at Codestral's shape); 8 warps per fp32
  // tile turn it around faster, 4 per bf16 one (H200 2026-12-03, bench/cuda_notes.md decode v9: fp32 B=128
  // 282 -> 270 µs with 8 warps, bf16 144 -> 160 with 8). With one 16-byte pack per lane (J = 1: N = 128)
  // a register cap keeps those blocks resident: ≤ 40 registers for 6 fp32 blocks, ≤ 48 for 10 bf16 ones
  // (12 would need 40 and spill); uncapped the step took 46 and 60 registers, i.e. 5 and 8 blocks (v10).
  const bool many = Bn * d.H >= 1024;
  const int threads = !many ? 512 : sizeof(S) == 4 ? 256 : 128;
  if constexpr (J == 1 && V * sizeof(S) == 16) {
    if (many) {
      constexpr int kThreads = sizeof(S) == 4 ? 256 : 128, kMinBlocks = sizeof(S) == 4 ? 6 : 10;
      return launch_with<S, V, J, kThreads, kMinBlocks>(threads, y, in, state, slot_stride, d, slots, raw, gate, Bn,
                                                         lr, s);
    }
  }
  launch_with<S, V, J, kMaxThreads, 1>(threads, y, in, state, slot_stride, d, slots, raw, gate, Bn, lr, s);
}

template <class S>
void dispatch(float* y, const SsdIn& in, S* state, int64_t slot_stride, const SsdDims& d, const int32_t* slots,
              const RawDt& raw, const DecodeGate& gate, int64_t Bn, cudaStream_t s) {
  constexpr int V = 16 / sizeof(S);
  const bool rows16 = aligned(state, 16) && (slot_stride * sizeof(S)) % 16 == 0;
  if (rows16) {
    int J = 0;
    if (const int lr = step_lanes<S>(d.N, &J))
      return J == 1 ? launch<S, V, 1>(y, in, state, slot_stride, d, slots, raw, gate, Bn, lr, s)
                    : launch<S, V, 2>(y, in, state, slot_stride, d, slots, raw, gate, Bn, lr, s);
  }
  launch<S, 1, 8>(y, in, state, slot_stride, d, slots, raw, gate, Bn, 32, s);  // N <= 256: 8 columns per lane
}

}  // namespace

void ssd_decode_trace(unsigned long long* buf) { PCM_CUDA(cudaMemcpyToSymbol(c_trace, &buf, sizeof buf)); }

void ssd_decode(float* y, const SsdIn& in, void* state, bool state_bf16, int64_t slot_stride, const SsdDims& d,
                const int32_t* slots, int64_t Bn, cudaStream_t s, const RawDt& raw_dt, const DecodeGate& gate) {
  check_ssd_dims(d);
  if (Bn == 0) return;
  if (state_bf16)
    dispatch(y, in, static_cast<__nv_bfloat16*>(state), slot_stride, d, slots, raw_dt, gate, Bn, s);
  else
    dispatch(y, in, static_cast<float*>(state), slot_stride, d, slots, raw_dt, gate, Bn, s);
}

}  // namespace pcm::cuda
