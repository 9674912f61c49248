// Per-block timestamps of the few-row decode chain (fused in_proj, SSD step, out_proj, head), so a bench can see
// where a layer's time goes between the kernels: when each block started, passed its dependency wait, had its
// inputs ready, and ended (bench/cuda_decode_kernels --trace). Off unless a buffer was set: one constant-cache
// read per stamp. Each translation unit that records holds its own copy of the buffer pointer.
#pragma once
#include <cstdint>

namespace pcm::cuda {
namespace {

// Buffer layout (unsigned long long): [0, 4) blocks recorded per kind, [4] records written, [5] capacity in
// records, [8, ...) records of kTraceWords: kind + 256 x the block's linear index, the kind's block count at the
// record (launch = count / grid size: a kind's launches never overlap), SM, tag (the layer's weight or state
// pointer), start, wait passed, inputs ready, end (ns, globaltimer).
constexpr int kTraceWords = 8;
enum : uint32_t { kTraceInProj = 0, kTraceOutProj = 1, kTraceHead = 2, kTraceStep = 3 };
__constant__ unsigned long long* c_trace;

__device__ __forceinline__ unsigned long long trace_now() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// Thread 0's stamps of its block (start, wait passed, inputs ready), in shared memory: held in registers across the
// kernel they took 4-7 more per thread, past the 64 the one-row out_proj needs to share an SM with in_proj.
__device__ __forceinline__ unsigned long long* trace_stamps() {
  __shared__ unsigned long long stamps[3];
  return stamps;
}
enum : int { kStampStart = 0, kStampWait = 1, kStampReady = 2 };
__device__ __forceinline__ void trace_mark(int which) {
  if (c_trace && threadIdx.x == 0) trace_stamps()[which] = trace_now();
}

// Every thread of the block calls it at the block's end (a __syncthreads when tracing, so the end is the last warp's).
__device__ void trace_block(uint32_t kind, const void* tag) {
  unsigned long long* buf = c_trace;
  if (!buf) return;
  __syncthreads();
  if (threadIdx.x != 0) return;
  const unsigned long long end = trace_now();
  const unsigned long long n = atomicAdd(buf + kind, 1ull), idx = atomicAdd(buf + 4, 1ull);
  if (idx >= buf[5]) return;
  uint32_t sm;
  asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
  unsigned long long* r = buf + 8 + idx * kTraceWords;
  const unsigned long long block = blockIdx.x + static_cast<unsigned long long>(blockIdx.y) * gridDim.x;
  const unsigned long long* st = trace_stamps();
  r[0] = kind + 256 * block, r[1] = n, r[2] = sm, r[3] = reinterpret_cast<unsigned long long>(tag);
  r[4] = st[kStampStart], r[5] = st[kStampWait], r[6] = st[kStampReady], r[7] = end;
}

}  // namespace
}  // namespace pcm::cuda
