#include "engine/generator.h"

#include <algorithm>
#include <chrono>

#include "util/error.h"

namespace pcm {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

GenerateResult generate_from_logits(Mamba2Model& model, SequenceState& state, std::vector<float> logits,
                                    const GenerateOptions& options, const std::function<bool(int32_t)>& on_token) {
  PCM_CHECK(options.max_new_tokens >= 0, "max_new_tokens must be >= 0");
  const int64_t V = model.vocab_size();
  PCM_CHECK(static_cast<int64_t>(logits.size()) == V, "generate: {} logits for a vocabulary of {}", logits.size(), V);
  GenerateResult result;
  Sampler sampler(options.sampling);
  result.finish_reason = "length";
  const auto t0 = std::chrono::steady_clock::now();
  SequenceState* states[1] = {&state};
  // Capped: a stop token may end the generation long before a huge --max-new-tokens.
  result.tokens.reserve(static_cast<size_t>(std::min<int64_t>(options.max_new_tokens, 1 << 16)));
  for (int64_t i = 0; i < options.max_new_tokens; ++i) {
    int32_t next = sampler.sample(logits.data(), V);
    result.tokens.push_back(next);
    bool keep_going = on_token ? on_token(next) : true;
    bool is_stop = std::find(options.stop_ids.begin(), options.stop_ids.end(), next) != options.stop_ids.end();
    if (!keep_going || is_stop) {
      result.finish_reason = "stop";
      break;
    }
    if (i + 1 < options.max_new_tokens) model.decode(std::span(&next, 1), states, logits.data());
  }
  if (options.feed_last_token && !result.tokens.empty())
    model.decode(std::span(&result.tokens.back(), 1), states, logits.data());
  result.decode_seconds = seconds_since(t0);
  return result;
}

GenerateResult generate(Mamba2Model& model, SequenceState& state, std::span<const int32_t> prompt,
                        const GenerateOptions& options, const std::function<bool(int32_t)>& on_token) {
  PCM_CHECK(!prompt.empty(), "empty prompt: at least one token is needed");
  std::vector<float> logits(static_cast<size_t>(model.vocab_size()));
  const auto t0 = std::chrono::steady_clock::now();
  model.prefill(prompt, state, logits.data(), /*all_positions=*/false);
  const double prefill_s = seconds_since(t0);
  GenerateResult result = generate_from_logits(model, state, std::move(logits), options, on_token);
  result.prompt_tokens = static_cast<int64_t>(prompt.size());
  result.prefill_seconds = prefill_s;
  return result;
}

}  // namespace pcm
