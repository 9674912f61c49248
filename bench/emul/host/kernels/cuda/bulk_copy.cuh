// Host emulation of src/kernels/cuda/bulk_copy.cuh. A bulk copy is held in flight as the copy engine holds it: asking
// fills its destination with 0xFF bytes (a NaN in fp32 and bf16) and records it on its mbarrier; the first wait on
// that mbarrier lands it (a loop of 16-byte loads, each checked by AddressSanitizer) and completes the phase (the
// word counts completed phases). So a lane still reading a stage when it is asked again, or reading one before its
// wait, computes with NaN and the step's check fails. What the hardware requires is checked too: 16-byte aligned
// addresses, a size a non-zero multiple of 16, one copy at a time per mbarrier (each is initialised with one
// arrival), and no wait for a phase that was never asked (on the GPU: a hang).
#pragma once
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>

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

// The copies asked and not yet landed, by mbarrier; the mutex also orders a landing before every wait that follows.
struct EmulCopy {
  void* dst;
  const void* src;
  uint32_t bytes;
};
inline std::mutex emul_copy_mutex;
inline std::unordered_map<const uint64_t*, EmulCopy> emul_in_flight;

__device__ __forceinline__ void barrier_init(uint64_t* bar) { std::atomic_ref<uint64_t>(*bar).store(0); }

__device__ __forceinline__ void bulk_load(void* dst, const void* src, uint32_t bytes, uint64_t* bar) {
  if (bytes == 0 || bytes % 16 || reinterpret_cast<uintptr_t>(dst) % 16 || reinterpret_cast<uintptr_t>(src) % 16)
    emul_fail("misaligned or empty", dst, src, bytes);
  const std::lock_guard lock(emul_copy_mutex);
  if (!emul_in_flight.emplace(bar, EmulCopy{dst, src, bytes}).second)
    emul_fail("a second copy on an mbarrier whose copy nobody waited for yet", dst, src, bytes);
  std::memset(dst, 0xFF, bytes);  // what a reader sees of a stage the copy engine is filling
  emul_copies.fetch_add(1);
}
__device__ __forceinline__ void bulk_load_once(void* dst, const void* src, uint32_t bytes, uint64_t* bar) {
  bulk_load(dst, src, bytes, bar);
}

__device__ __forceinline__ void barrier_wait(uint64_t* bar, uint32_t phase) {
  uint64_t done;
  {
    const std::lock_guard lock(emul_copy_mutex);
    if (const auto it = emul_in_flight.find(bar); it != emul_in_flight.end()) {  // lands now
      const uint4* s = static_cast<const uint4*>(it->second.src);
      uint4* t = static_cast<uint4*>(it->second.dst);
      for (uint32_t i = 0; i < it->second.bytes / 16; ++i) t[i] = s[i];
      emul_in_flight.erase(it);
      std::atomic_ref<uint64_t>(*bar).fetch_add(1);
    }
    done = std::atomic_ref<uint64_t>(*bar).load();
  }
  // phase P has completed when the completed count's parity is no longer P; every copy asked has landed by now, so a
  // wait that would not return is a take with no ask in flight
  if ((done & 1) == phase) emul_fail("wait for a phase nothing was asked for (a hang on the GPU)", bar, nullptr, phase);
  if (threadIdx.x % 32 == 0) emul_lane0_waits.fetch_add(1);
}

}  // namespace pcm::cuda
