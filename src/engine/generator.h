// Single-sequence generation: prefill the prompt into a state, then decode token by token.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "engine/sampler.h"
#include "model/model.h"

namespace pcm {

struct GenerateOptions {
  int64_t max_new_tokens = 128;
  SamplingParams sampling;
  std::vector<int32_t> stop_ids;  // a sampled id in this list ends generation (it is still reported)
  // Feed the last sampled token into the state before returning, so the state covers every token
  // (a chat continues from it). Costs one more decode step.
  bool feed_last_token = false;
};

struct GenerateResult {
  std::vector<int32_t> tokens;
  std::string finish_reason;  // "stop" (stop id or callback), "length"
  int64_t prompt_tokens = 0;
  double prefill_seconds = 0.0;
  double decode_seconds = 0.0;
};

// Continues `state` with `prompt` (may be empty if the state already ends where generation starts and
// `last_logits` is given), then samples. on_token(id) runs after each token; returning false stops.
GenerateResult generate(Mamba2Model& model, SequenceState& state, std::span<const int32_t> prompt,
                        const GenerateOptions& options, const std::function<bool(int32_t)>& on_token = {});

// The same, starting from the logits after the state's last token (a chat turn already prefilled).
GenerateResult generate_from_logits(Mamba2Model& model, SequenceState& state, std::vector<float> logits,
                                    const GenerateOptions& options, const std::function<bool(int32_t)>& on_token = {});

}  // namespace pcm
