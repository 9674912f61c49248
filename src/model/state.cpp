#include "model/state.h"

#include <algorithm>

namespace pcm {

SequenceState::SequenceState(const Mamba2Config& c)
    : layers(c.num_layers),
      conv_layer_elems(c.conv_dim() * c.conv_kernel),
      ssm_layer_elems(c.num_heads * c.head_dim * c.state_size),
      conv(static_cast<size_t>(c.conv_state_elems()), 0.0f),
      ssm(static_cast<size_t>(c.ssm_state_elems()), 0.0f) {}

bool SequenceState::fits(const Mamba2Config& c) const {
  return layers == c.num_layers && conv_layer_elems == c.conv_dim() * c.conv_kernel &&
         ssm_layer_elems == c.num_heads * c.head_dim * c.state_size &&
         static_cast<int64_t>(conv.size()) == c.conv_state_elems() &&
         static_cast<int64_t>(ssm.size()) == c.ssm_state_elems();
}

void SequenceState::reset() {
  std::fill(conv.begin(), conv.end(), 0.0f);
  std::fill(ssm.begin(), ssm.end(), 0.0f);
  tokens_seen = 0;
}

}  // namespace pcm
