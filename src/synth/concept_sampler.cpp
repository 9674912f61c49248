#include "synth/concept_sampler.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "util/error.h"

namespace pcm::synth {

double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

size_t draw_categorical(const std::vector<double>& probs, std::mt19937_64& rng) {
  double u = uniform01(rng), acc = 0.0;
  size_t last_positive = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    if (probs[i] <= 0.0) continue;
    acc += probs[i];
    last_positive = i;
    if (u < acc) return i;
  }
  return last_positive;  // rounding left u just above the total
}

ConceptSampler::ConceptSampler(const std::vector<std::vector<std::string>>& lists,
                               const std::map<std::string, std::vector<float>>& embeddings) {
  std::set<std::string> all, missing;
  for (const auto& list : lists)
    for (const auto& c : list) (embeddings.count(c) ? all : missing).insert(c);
  skipped_ = missing.size();
  concepts_.assign(all.begin(), all.end());
  PCM_CHECK(!concepts_.empty(), "concept sampler: no concept has an embedding");
  std::unordered_map<std::string, int> index;
  for (size_t i = 0; i < concepts_.size(); ++i) index[concepts_[i]] = static_cast<int>(i);
  frequency_.assign(concepts_.size(), 0);
  cooccur_.resize(concepts_.size());
  for (const auto& list : lists) {
    std::vector<int> ids;
    for (const auto& c : list) {
      auto it = index.find(c);
      if (it != index.end()) ids.push_back(it->second);
    }
    for (int a : ids) {
      frequency_[a]++;
      for (int b : ids)
        if (a != b) cooccur_[a][b]++;
    }
  }
  dim_ = embeddings.at(concepts_[0]).size();
  PCM_CHECK(dim_ > 0, "concept sampler: empty embedding for '{}'", concepts_[0]);
  unit_embeddings_.assign(concepts_.size() * dim_, 0.0f);
  for (size_t i = 0; i < concepts_.size(); ++i) {
    const auto& e = embeddings.at(concepts_[i]);
    PCM_CHECK(e.size() == dim_, "concept sampler: embedding of '{}' has dimension {}, expected {}", concepts_[i],
              e.size(), dim_);
    double norm = 0.0;
    for (float x : e) norm += static_cast<double>(x) * x;
    norm = std::sqrt(norm);
    PCM_CHECK(norm > 0.0 && std::isfinite(norm), "concept sampler: embedding of '{}' is zero or not finite",
              concepts_[i]);
    for (size_t d = 0; d < dim_; ++d) unit_embeddings_[i * dim_ + d] = static_cast<float>(e[d] / norm);
  }
}

std::vector<double> ConceptSampler::first_probabilities() const {
  double total = 0.0;
  for (int64_t f : frequency_) total += static_cast<double>(f);
  std::vector<double> p(frequency_.size());
  for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<double>(frequency_[i]) / total;
  return p;
}

std::vector<double> ConceptSampler::next_scores(const std::vector<int>& chosen) const {
  size_t n = concepts_.size();
  std::vector<double> scores(n, 0.0);
  for (int c : chosen)
    for (const auto& [other, count] : cooccur_[c]) scores[other] += static_cast<double>(count);
  // Cosine similarity to the normalised mean of the chosen unit vectors.
  std::vector<double> query(dim_, 0.0);
  for (int c : chosen)
    for (size_t d = 0; d < dim_; ++d) query[d] += unit_embeddings_[c * dim_ + d];
  double norm = 0.0;
  for (double q : query) norm += q * q;
  norm = std::sqrt(norm);
  if (norm > 0.0) {
    // One matrix-vector product over all concepts (tens of thousands x thousands of dims in real runs).
    std::vector<float> q(dim_), sims(n);
    for (size_t d = 0; d < dim_; ++d) q[d] = static_cast<float>(query[d] / norm);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(n), static_cast<int>(dim_), 1.0f, unit_embeddings_.data(),
                static_cast<int>(dim_), q.data(), 1, 0.0f, sims.data(), 1);
    for (size_t i = 0; i < n; ++i) scores[i] += sims[i];
  }
  return scores;
}

std::vector<double> ConceptSampler::next_probabilities(const std::vector<int>& chosen, double temperature) const {
  PCM_CHECK(temperature > 0.0, "concept sampler: temperature must be > 0 (got {})", temperature);
  std::vector<double> scores = next_scores(chosen);
  std::vector<bool> excluded(scores.size(), false);
  for (int c : chosen) excluded[c] = true;
  double max_score = -std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < scores.size(); ++i)
    if (!excluded[i]) max_score = std::max(max_score, scores[i]);
  std::vector<double> p(scores.size(), 0.0);
  double total = 0.0;
  for (size_t i = 0; i < scores.size(); ++i) {
    if (excluded[i]) continue;
    p[i] = std::exp((scores[i] - max_score) / temperature);  // shifted: same softmax, no overflow
    total += p[i];
  }
  for (double& x : p) x /= total;
  return p;
}

std::vector<int> ConceptSampler::sample(size_t size, double temperature, std::mt19937_64& rng) const {
  PCM_CHECK(size >= 1 && size <= concepts_.size(), "concept sampler: list size {} needs at least that many concepts (have {})",
            size, concepts_.size());
  std::vector<int> chosen = {static_cast<int>(draw_categorical(first_probabilities(), rng))};
  while (chosen.size() < size) chosen.push_back(static_cast<int>(draw_categorical(next_probabilities(chosen, temperature), rng)));
  return chosen;
}

}  // namespace pcm::synth
