// RMSNorm (pre-mixer and final) and the grouped gated RMSNorm of the Mamba-2 mixer.
#pragma once
#include <cstdint>

namespace pcm::cpu {

// out[t, :] = in[t, :] / sqrt(mean(in[t, :]^2) + eps) * weight
void rmsnorm_forward(float* out, const float* in, const float* weight, int64_t T, int64_t C, float eps);

// g = y * silu(z); out = g normalised over each block of `group_size` channels, times weight.
// y, out: [T, C] contiguous; z: row t at z + t * z_stride (z is a slice of in_proj's output).
void gated_rmsnorm_forward(float* out, const float* y, const float* z, int64_t z_stride, const float* weight,
                           int64_t T, int64_t C, int64_t group_size, float eps);

}  // namespace pcm::cpu
