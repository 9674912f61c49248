// Scalar activations, written as PyTorch computes them.
#pragma once
#include <cmath>

namespace pcm::cpu {

inline float silu(float x) { return x / (1.0f + std::exp(-x)); }

// torch.nn.functional.softplus with threshold 20 (linear above it).
inline float softplus(float x) { return x > 20.0f ? x : std::log1p(std::exp(x)); }

}  // namespace pcm::cpu
