#include "engine/sampler.h"

#include <algorithm>
#include <cmath>

#include "util/error.h"

namespace pcm {

void SamplingParams::validate() const {
  PCM_CHECK(std::isfinite(temperature) && temperature >= 0.0f, "temperature must be >= 0, got {}", temperature);
  PCM_CHECK(top_k >= 0, "top_k must be >= 0, got {}", top_k);
  PCM_CHECK(top_p > 0.0f && top_p <= 1.0f, "top_p must be in (0, 1], got {}", top_p);
  PCM_CHECK(min_p >= 0.0f && min_p <= 1.0f, "min_p must be in [0, 1], got {}", min_p);
}

int32_t argmax(const float* logits, int64_t V) {
  int64_t best = 0;
  for (int64_t i = 1; i < V; ++i)
    if (logits[i] > logits[best]) best = i;
  return static_cast<int32_t>(best);
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) { params.validate(); }

int32_t Sampler::sample(const float* logits, int64_t V) {
  if (params_.temperature == 0.0f) return argmax(logits, V);
  auto& c = candidates_;
  c.resize(static_cast<size_t>(V));
  // (logit - max) / T, never logit * (1 / T): for T under ~3e-39, 1 / T is inf and the products inf or NaN (the
  // draw then took the highest ids); divided, the maximum is 0 and the rest -inf, so a tiny T is greedy.
  const float top = logits[argmax(logits, V)];
  for (int64_t i = 0; i < V; ++i)
    c[static_cast<size_t>(i)] = {(logits[i] - top) / params_.temperature, static_cast<int32_t>(i)};
  auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  size_t n = c.size();
  if (params_.top_k > 0 && params_.top_k < V) {
    n = static_cast<size_t>(params_.top_k);
    std::nth_element(c.begin(), c.begin() + static_cast<long>(n) - 1, c.end(), by_logit);
  }
  std::sort(c.begin(), c.begin() + static_cast<long>(n), by_logit);
  // Softmax over the survivors (stored back into .first as probabilities).
  const float max_logit = c[0].first;
  double total = 0.0;
  for (size_t i = 0; i < n; ++i) {
    c[i].first = std::exp(c[i].first - max_logit);
    total += c[i].first;
  }
  for (size_t i = 0; i < n; ++i) c[i].first = static_cast<float>(c[i].first / total);
  if (params_.top_p < 1.0f) {  // smallest prefix whose mass reaches top_p
    double cum = 0.0;
    size_t keep = n;
    for (size_t i = 0; i < n; ++i) {
      cum += c[i].first;
      if (cum >= params_.top_p) {
        keep = i + 1;
        break;
      }
    }
    n = keep;
  }
  if (params_.min_p > 0.0f) {
    const float floor = params_.min_p * c[0].first;
    size_t keep = 1;
    while (keep < n && c[keep].first >= floor) ++keep;
    n = keep;
  }
  double mass = 0.0;
  for (size_t i = 0; i < n; ++i) mass += c[i].first;
  double u = std::uniform_real_distribution<double>(0.0, mass)(rng_);
  for (size_t i = 0; i < n; ++i) {
    u -= c[i].first;
    if (u < 0.0) return c[i].second;
  }
  return c[n - 1].second;
}

}  // namespace pcm
