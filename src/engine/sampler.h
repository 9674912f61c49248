// Token sampling: greedy, temperature, top-k, top-p (nucleus), min-p, with a per-sequence seed.
#pragma once
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace pcm {

struct SamplingParams {
  float temperature = 1.0f;  // 0 = greedy
  int64_t top_k = 0;         // 0 = off
  float top_p = 1.0f;        // 1 = off
  float min_p = 0.0f;        // 0 = off
  uint64_t seed = 0;

  void validate() const;  // throws pcm::Error naming the bad parameter
};

// First index of the largest logit (torch.argmax's tie rule).
int32_t argmax(const float* logits, int64_t V);

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  // Order as in vLLM: temperature, then top-k, then top-p, then min-p, then a draw.
  int32_t sample(const float* logits, int64_t V);
  const SamplingParams& params() const { return params_; }

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> candidates_;  // reused across calls
};

}  // namespace pcm
