// Backward of the RMSNorms in norm.h. dweight is accumulated (+=); dx is written (=) or added (+=).
#pragma once
#include <cstdint>

namespace pcm::cpu {

// out = x * r * weight, r = 1 / sqrt(mean(x²) + eps) per row of C.
// dx (+= when accumulate, else =) gets d/dx; dweight += sum over rows of dout * x * r.
void rmsnorm_backward(float* dx, float* dweight, const float* dout, const float* x, const float* weight, int64_t T,
                      int64_t C, float eps, bool accumulate);

// g = y * silu(z), normalised per block of group_size channels, times weight (gated_rmsnorm_forward).
// dy: [T, C] (=); dz: row t at dz + t * dz_stride (=); dweight +=.
void gated_rmsnorm_backward(float* dy, float* dz, int64_t dz_stride, float* dweight, const float* dout,
                            const float* y, const float* z, int64_t z_stride, const float* weight, int64_t T,
                            int64_t C, int64_t group_size, float eps);

}  // namespace pcm::cpu
