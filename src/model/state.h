// SequenceState: the fixed-size memory of one sequence — a conv window and an SSM state per layer.
// Its size depends on the model, never on how many tokens the sequence has seen.
#pragma once
#include <cstdint>
#include <vector>

#include "model/config.h"

namespace pcm {

struct SequenceState {
  int64_t layers = 0, conv_layer_elems = 0, ssm_layer_elems = 0;
  std::vector<float> conv;  // [L, conv_dim, K], the last K conv inputs, oldest first
  std::vector<float> ssm;   // [L, H, P, N]
  int64_t tokens_seen = 0;

  explicit SequenceState(const Mamba2Config& c);
  SequenceState() = default;

  float* conv_layer(int64_t l) { return conv.data() + l * conv_layer_elems; }
  float* ssm_layer(int64_t l) { return ssm.data() + l * ssm_layer_elems; }
  const float* conv_layer(int64_t l) const { return conv.data() + l * conv_layer_elems; }
  const float* ssm_layer(int64_t l) const { return ssm.data() + l * ssm_layer_elems; }
  size_t bytes() const { return (conv.size() + ssm.size()) * sizeof(float); }
  // Whether this state has model c's layout (layer count and both buffers' sizes): the one check every engine makes
  // before reading or writing a state it was handed.
  bool fits(const Mamba2Config& c) const;
  void reset();  // back to the state of an empty sequence
};

}  // namespace pcm
