// PromptCoT's concept-list sampler: the first concept is drawn by frequency over the extracted lists; each
// next one by softmax((co-occurrence count with the chosen ones + cosine similarity to the chosen ones'
// mean embedding) / temperature) over the concepts not yet chosen. Deterministic for a given seed.
#pragma once
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace pcm::synth {

class ConceptSampler {
 public:
  // `lists`: the concepts of each seed problem; `embeddings`: one vector per concept (any norm). Concepts
  // without an embedding are left out of sampling (see skipped()).
  ConceptSampler(const std::vector<std::vector<std::string>>& lists,
                 const std::map<std::string, std::vector<float>>& embeddings);

  const std::vector<std::string>& concepts() const { return concepts_; }  // sorted
  size_t skipped() const { return skipped_; }

  // P(first = concepts()[i]), proportional to frequency.
  std::vector<double> first_probabilities() const;
  // P(next = concepts()[i] | chosen) at `temperature`; chosen ones get 0.
  std::vector<double> next_probabilities(const std::vector<int>& chosen, double temperature) const;
  // Score (co-occurrence + cosine) of every concept given the chosen ones (for tests and diagnostics).
  std::vector<double> next_scores(const std::vector<int>& chosen) const;

  // A list of `size` distinct concept indices.
  std::vector<int> sample(size_t size, double temperature, std::mt19937_64& rng) const;

 private:
  std::vector<std::string> concepts_;
  std::vector<int64_t> frequency_;
  std::vector<std::unordered_map<int, int64_t>> cooccur_;
  std::vector<float> unit_embeddings_;  // [N, dim], L2-normalised
  size_t dim_ = 0;
  size_t skipped_ = 0;
};

// A uniform double in [0, 1) from 53 random bits (identical on every platform, unlike std distributions).
double uniform01(std::mt19937_64& rng);
// Index drawn from `probs` (which sum to ~1).
size_t draw_categorical(const std::vector<double>& probs, std::mt19937_64& rng);

}  // namespace pcm::synth
