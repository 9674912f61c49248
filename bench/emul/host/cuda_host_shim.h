// Device code of the decode kernels compiled by g++ and run on the CPU (bench/emul/host/README.md): each block of the
// grid is a process (so a kernel's static `__shared__` arrays, made `static` by the build script, are per block), each
// thread of a block a pthread; global memory is one shared mapping made before the fork, so every block sees it at the
// same address. Built with AddressSanitizer, every load and store is checked against the buffers' bounds.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <sched.h>

#include <atomic>
#include <barrier>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace emul {

inline thread_local uint3 thread_idx{0, 0, 0};
inline uint3 block_idx{0, 0, 0};  // per process: one block
inline dim3 block_dim{1, 1, 1}, grid_dim{1, 1, 1};

struct Warp {
  std::barrier<> bar{32};
  unsigned long long slot[32];
};
inline std::barrier<>* block_barrier = nullptr;  // blockDim.x threads
inline Warp* warps = nullptr;                    // blockDim.x / 32

inline Warp& my_warp() { return warps[thread_idx.x >> 5]; }

template <class T>
T exchange(T v, int from_lane) {  // every lane of the warp calls it (full masks only)
  static_assert(sizeof(T) <= 8);
  Warp& w = my_warp();
  unsigned long long bits = 0;
  __builtin_memcpy(&bits, &v, sizeof(T));
  w.slot[thread_idx.x & 31] = bits;
  w.bar.arrive_and_wait();
  bits = w.slot[from_lane & 31];
  w.bar.arrive_and_wait();
  T r;
  __builtin_memcpy(&r, &bits, sizeof(T));
  return r;
}

}  // namespace emul

// The built-ins as variables (not macros: launch configs have members of these names).
inline thread_local uint3& threadIdx = emul::thread_idx;
inline uint3& blockIdx = emul::block_idx;
inline dim3& blockDim = emul::block_dim;
inline dim3& gridDim = emul::grid_dim;
#define __launch_bounds__(...)

inline void __syncthreads() { emul::block_barrier->arrive_and_wait(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  if (mask != 0xffffffffu) std::abort();
  emul::my_warp().bar.arrive_and_wait();
}
template <class T>
T __shfl_xor_sync(unsigned mask, T v, int o) {
  if (mask != 0xffffffffu) std::abort();
  return emul::exchange(v, (threadIdx.x & 31) ^ o);
}
inline unsigned atomicAdd(unsigned* p, unsigned v) { return std::atomic_ref<unsigned>(*p).fetch_add(v); }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
  return std::atomic_ref<unsigned long long>(*p).fetch_add(v);
}
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline float __expf(float x) { return std::exp(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float __uint_as_float(unsigned u) { return std::bit_cast<float>(u); }
inline int64_t min(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t max(int64_t a, int64_t b) { return a > b ? a : b; }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }

// prefetch.global.L2 (device_util.cuh's prefetch_l2, replaced by the build script): the address must be in a buffer.
void emul_prefetch_l2(const void* p);
