// Mamba2Weights: every parameter of the model, bound by name from a checkpoint (HF or mamba_ssm
// naming) with shapes checked against the config. The large matrices stay in their file dtype
// (memory-mapped); the small per-channel vectors are converted to float32 once.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "model/config.h"
#include "tensor/matrix.h"

namespace pcm {

struct LayerWeights {
  std::vector<float> norm;           // [d]
  MatrixRef in_proj;                 // [d_in_proj, d]
  std::vector<float> in_proj_bias;   // [d_in_proj], empty without use_bias
  std::vector<float> conv_weight;    // [conv_dim, K]
  std::vector<float> conv_bias;      // [conv_dim], zeros without use_conv_bias
  std::vector<float> dt_bias;        // [H]
  std::vector<float> A;              // [H], -exp(A_log)
  std::vector<float> D;              // [H]
  std::vector<float> gate_norm;      // [d_inner], the grouped gated RMSNorm weight
  MatrixRef out_proj;                // [d, d_inner]
  std::vector<float> out_proj_bias;  // [d], empty without use_bias
};

struct Mamba2Weights {
  MatrixRef embedding;  // [V, d]
  std::vector<LayerWeights> layers;
  std::vector<float> norm_f;  // [d]
  MatrixRef lm_head;          // [V, d]; the embedding when tied
  std::vector<std::shared_ptr<const void>> owners;  // keeps the memory behind the MatrixRefs alive

  size_t matrix_bytes() const;  // bytes of the large matrices as stored
  DType matrix_dtype() const { return embedding.dtype; }
};

// Binds a checkpoint's tensors. Errors name the tensor, its shape and the shape the config expects.
Mamba2Weights bind_mamba2_weights(const Mamba2Config& config, std::shared_ptr<const CheckpointFiles> files);

// Random weights of the config's shape (for benchmarks and tests), large matrices in `dtype`,
// scaled like a trained model (std 0.02 projections, A in [1, 16], dt in [1e-3, 1e-1]).
Mamba2Weights random_mamba2_weights(const Mamba2Config& config, DType dtype, uint64_t seed);

}  // namespace pcm
