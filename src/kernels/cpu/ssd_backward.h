// Backward of the SSD scan (ssd.h) over one sequence:
//   S_t = exp(dt_t A_h) S_{t-1} + dt_t x_t ⊗ B_t,   y_t = S_t · C_t + D_h x_t.
// The states are not stored by the forward: they are recomputed from the initial state, keeping one
// [P, N] snapshot every Q positions and the Q states of the chunk being differentiated, so memory is
// O((T/Q + Q)·P·N) per thread. Heads run in parallel; B and C, shared by the heads of a group, get
// per-head gradients that are summed per group at the end (no write races).
#pragma once
#include <cstdint>

#include "kernels/cpu/ssd.h"

namespace pcm::cpu {

struct SsdGrads {
  float* dx;      // same layout as SsdInputs::x (row t at dx + t * stride), written (=)
  float* dB;      // like SsdInputs::B, written (=)
  float* dC;      // like SsdInputs::C, written (=)
  int64_t stride;
  float* ddt;     // [T, H], written (=): gradient w.r.t. dt after softplus/clamp
  float* dA;      // [H], accumulated (+=): gradient w.r.t. A (not A_log)
  float* dD;      // [H], accumulated (+=)
  float* dstate0; // [H, P, N], written (=); null = not wanted
};

// Scratch floats ssd_backward needs (per-head B/C gradients before the group sum).
int64_t ssd_backward_scratch_floats(int64_t T, const SsdShape& s);

// state0: [H, P, N] initial state (null = zeros, a document start). dy: [T, H * P].
void ssd_backward(const SsdGrads& g, const float* dy, const SsdInputs& in, const float* state0, int64_t T, int64_t Q,
                  const SsdShape& s, float* scratch);

// The same gradients in the chunked (matrix) form of the forward, per chunk of Q positions:
// small sgemms over [Q, Q], [Q, P], [Q, N] and [P, N] blocks instead of a step per position. Chunk
// entry states come from a chunk-level forward pass (one [P, N] snapshot per chunk). Same scratch
// as ssd_backward. This is the one the training engine uses; ssd_backward is its reference.
void ssd_chunked_backward(const SsdGrads& g, const float* dy, const SsdInputs& in, const float* state0, int64_t T,
                          int64_t Q, const SsdShape& s, float* scratch);

}  // namespace pcm::cpu
