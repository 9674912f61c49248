// The tc chunked SSD backward's state adjoints (U, then dS: [chunks, H, P, N]) in 4 x 4 blocks: element (p, n) of a
// head's P x N state at ((p / 4) (N / 4) + n / 4) 16 + 4 (n % 4) + p % 4. Why: dB takes dS as its B operand with
// k = p, and a 16-byte piece of this layout is four consecutive p of one n: one B fragment per 16-byte load (the
// row-major [p][n] took four scalar loads). dX, which needs n consecutive, transposes each block in shared memory.
// Written by U (ssd_backward_u_tc.cu), updated in place by the state-adjoint pass (ssd_chunked_backward.cu).
#pragma once
#include <cstdint>

namespace pcm::cuda::state_blocks {

__host__ __device__ __forceinline__ int64_t at(int p, int n, int N) {
  return ((static_cast<int64_t>(p >> 2) * (N >> 2) + (n >> 2)) << 4) + 4 * (n & 3) + (p & 3);
}

// The row-major index p N + n of blocked index e (N % 4 == 0).
__host__ __device__ __forceinline__ int64_t row_major(int64_t e, int N) {
  const int64_t b = e >> 4, q = N >> 2;
  const int w = static_cast<int>(e & 15);
  return (4 * (b / q) + (w & 3)) * N + 4 * (b % q) + (w >> 2);
}

}  // namespace pcm::cuda::state_blocks
