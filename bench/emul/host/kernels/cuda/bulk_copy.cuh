// Host emulation of src/kernels/cuda/bulk_copy.cuh: a bulk copy lands at once (a loop of 16-byte loads, each checked
// by AddressSanitizer) and completes one phase of its mbarrier (the word counts completed phases). What the hardware
// requires is checked: 16-byte aligned addresses, a size a non-zero multiple of 16, and no wait for a phase that was
// never asked (on the GPU: a hang). Copies land at once, so a copy into a stage still being read goes unseen here
// (bench/emul/decode_persistent_emul.py replays the ring's asks and takes for that).
#pragma once
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace pcm::cuda {

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(reinterpret_cast<uintptr_t>(p));
}

inline void emul_fail(const char* what, const void* a, const void* b, uint32_t n) {
  std::fprintf(stderr, "EMUL bulk copy: %s (dst %p src %p bytes %u, block %u thread %u)\n", what, a, b, n, blockIdx.x,
               threadIdx.x);
  std::abort();
}

// Per process (block): copies issued and waits by lane 0 of a warp (every lane takes every chunk): equal at the
// kernel's end, else a copy was still in flight when the block exited.
inline std::atomic<uint64_t> emul_copies{0}, emul_lane0_waits{0};

__device__ __forceinline__ void barrier_init(uint64_t* bar) { std::atomic_ref<uint64_t>(*bar).store(0); }

__device__ __forceinline__ void bulk_load(void* dst, const void* src, uint32_t bytes, uint64_t* bar) {
  if (bytes == 0 || bytes % 16 || reinterpret_cast<uintptr_t>(dst) % 16 || reinterpret_cast<uintptr_t>(src) % 16)
    emul_fail("misaligned or empty", dst, src, bytes);
  const uint4* s = static_cast<const uint4*>(src);
  uint4* t = static_cast<uint4*>(dst);
  for (uint32_t i = 0; i < bytes / 16; ++i) t[i] = s[i];
  std::atomic_ref<uint64_t>(*bar).fetch_add(1);
  emul_copies.fetch_add(1);
}
__device__ __forceinline__ void bulk_load_once(void* dst, const void* src, uint32_t bytes, uint64_t* bar) {
  bulk_load(dst, src, bytes, bar);
}

__device__ __forceinline__ void barrier_wait(uint64_t* bar, uint32_t phase) {
  // phase P has completed when the completed count's parity is no longer P; with copies landing at once a wait that
  // would not return is a take with no ask in flight
  const uint64_t done = std::atomic_ref<uint64_t>(*bar).load();
  if ((done & 1) == phase) emul_fail("wait for a phase nothing was asked for (a hang on the GPU)", bar, nullptr, phase);
  if (threadIdx.x % 32 == 0) emul_lane0_waits.fetch_add(1);
}

}  // namespace pcm::cuda
