// The Mamba-2 state-space-dual (SSD) scan, per head h with state S [P, N]:
//   S_t = exp(dt_t * A_h) * S_{t-1} + dt_t * x_t ⊗ B_t,   y_t = S_t · C_t + D_h * x_t
// Two forms of the same function: the recurrence (decode, and the reference) and the chunked form
// (prefill: O(T·Q·(N+P)) work in matrix-shaped loops). Both continue from and update `state`.
#pragma once
#include <cstdint>

namespace pcm::cpu {

struct SsdShape {
  int64_t H, P, G, N;  // heads, head dim, groups, state size; head h reads group h / (H / G)
};

// Inputs for T tokens: x row t, head h at x + t * stride + h * P; B and C row t, group g at
// B + t * stride + g * N (x, B and C are slices of the conv output). dt: [T, H] after softplus/clamp.
// A, D: [H]. state: [H, P, N]. y: [T, H * P] contiguous.
struct SsdInputs {
  const float* x;
  const float* B;
  const float* C;
  int64_t stride;
  const float* dt;
  const float* A;
  const float* D;
};

void ssd_recurrent_forward(float* y, const SsdInputs& in, float* state, int64_t T, const SsdShape& s);

// Floats of scratch the chunked form needs for chunk size Q.
int64_t ssd_chunked_scratch_floats(int64_t Q, const SsdShape& s);
void ssd_chunked_forward(float* y, const SsdInputs& in, float* state, int64_t T, int64_t Q, const SsdShape& s,
                         float* scratch);

}  // namespace pcm::cpu
