// Concept-list sampling speed at a realistic pool size: N concepts with D-dimensional embeddings (random),
// co-occurrence from N/2 random lists of 5. Usage: synth_sampler [concepts=20000] [dim=1024] [lists=200]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "synth/concept_sampler.h"

int main(int argc, char** argv) {
  size_t n = argc > 1 ? std::atoll(argv[1]) : 20000, dim = argc > 2 ? std::atoll(argv[2]) : 1024;
  int lists = argc > 3 ? std::atoi(argv[3]) : 200;
  std::mt19937_64 rng(1);
  std::normal_distribution<float> normal;
  std::map<std::string, std::vector<float>> emb;
  std::vector<std::string> names(n);
  for (size_t i = 0; i < n; ++i) {
    names[i] = "concept " + std::to_string(i);
    std::vector<float> v(dim);
    for (float& x : v) x = normal(rng);
    emb[names[i]] = std::move(v);
  }
  std::vector<std::vector<std::string>> seeds(n / 2);
  for (auto& l : seeds)
    for (int j = 0; j < 5; ++j) l.push_back(names[rng() % n]);
  auto t0 = std::chrono::steady_clock::now();
  pcm::synth::ConceptSampler sampler(seeds, emb);
  auto t1 = std::chrono::steady_clock::now();
  for (int i = 0; i < lists; ++i) sampler.sample(5, 0.2, rng);
  auto t2 = std::chrono::steady_clock::now();
  std::printf("%zu concepts x %zu dims: build %.2f s, %.2f ms per list of 5\n", sampler.concepts().size(), dim,
              std::chrono::duration<double>(t1 - t0).count(),
              1000.0 * std::chrono::duration<double>(t2 - t1).count() / lists);
}
