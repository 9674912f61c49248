#include "synth/concept_sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "util/error.h"

namespace pcm::synth {
namespace {

// A, B, C, D with lists {A,B} {A,C} {A,B} {D}: frequencies 3,2,1,1; co-occurrence A-B 2, A-C 1.
// Embeddings (2-D): A=(1,0), B=(0,1), C=(1,1) (normalised by the sampler), D=(-1,0).
ConceptSampler small_example() {
  std::vector<std::vector<std::string>> lists = {{"A", "B"}, {"A", "C"}, {"A", "B"}, {"D"}};
  std::map<std::string, std::vector<float>> emb = {{"A", {1, 0}}, {"B", {0, 1}}, {"C", {1, 1}}, {"D", {-1, 0}}};
  return ConceptSampler(lists, emb);
}

TEST(ConceptSampler, FirstConceptByFrequency) {
  ConceptSampler s = small_example();
  ASSERT_EQ(s.concepts(), (std::vector<std::string>{"A", "B", "C", "D"}));
  auto p = s.first_probabilities();
  EXPECT_NEAR(p[0], 3.0 / 7, 1e-12);
  EXPECT_NEAR(p[1], 2.0 / 7, 1e-12);
  EXPECT_NEAR(p[2], 1.0 / 7, 1e-12);
  EXPECT_NEAR(p[3], 1.0 / 7, 1e-12);
}

TEST(ConceptSampler, NextConceptMatchesHandComputedSoftmax) {
  ConceptSampler s = small_example();
  // Chosen {A}: scores B = 2 + 0, C = 1 + 1/sqrt(2), D = 0 - 1; softmax at T = 0.2 (computed by hand).
  auto scores = s.next_scores({0});
  EXPECT_NEAR(scores[1], 2.0, 1e-6);
  EXPECT_NEAR(scores[2], 1.0 + 1.0 / std::sqrt(2.0), 1e-6);
  EXPECT_NEAR(scores[3], -1.0, 1e-6);
  auto p = s.next_probabilities({0}, 0.2);
  EXPECT_EQ(p[0], 0.0);  // chosen ones are excluded
  EXPECT_NEAR(p[1], 0.8122146002262859, 1e-6);
  EXPECT_NEAR(p[2], 0.18778515131538315, 1e-6);
  EXPECT_NEAR(p[3], 2.484583309546836e-07, 1e-9);
  // Chosen {A, B}: mean direction (1,1)/sqrt(2); C = 1 + 1, D = 0 - 1/sqrt(2).
  auto p2 = s.next_probabilities({0, 1}, 0.2);
  EXPECT_NEAR(p2[2], 0.9999986769028303, 1e-9);
  EXPECT_NEAR(p2[3], 1.3230971697165036e-06, 1e-9);
}

TEST(ConceptSampler, SeededAndReproducible) {
  ConceptSampler s = small_example();
  std::mt19937_64 a(7), b(7), c(8);
  std::vector<std::vector<int>> ra, rb, rc;
  for (int i = 0; i < 50; ++i) {
    ra.push_back(s.sample(3, 0.2, a));
    rb.push_back(s.sample(3, 0.2, b));
    rc.push_back(s.sample(3, 0.2, c));
  }
  EXPECT_EQ(ra, rb);
  EXPECT_NE(ra, rc);
  for (const auto& l : ra) {
    std::set<int> distinct(l.begin(), l.end());
    EXPECT_EQ(distinct.size(), 3u);
  }
}

TEST(ConceptSampler, EmpiricalFrequenciesFollowTheProbabilities) {
  ConceptSampler s = small_example();
  std::mt19937_64 rng(1);
  int first_a = 0, second_b_after_a = 0, a_first = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    auto l = s.sample(2, 0.2, rng);
    if (l[0] == 0) {
      ++a_first;
      if (l[1] == 1) ++second_b_after_a;
    }
    first_a += l[0] == 0;
  }
  EXPECT_NEAR(static_cast<double>(first_a) / n, 3.0 / 7, 0.015);
  EXPECT_NEAR(static_cast<double>(second_b_after_a) / a_first, 0.8122, 0.02);
}

TEST(ConceptSampler, ConceptsWithoutEmbeddingAreSkippedAndBadEmbeddingsRejected) {
  std::vector<std::vector<std::string>> lists = {{"A", "B", "X"}};
  ConceptSampler s(lists, {{"A", {1, 0}}, {"B", {0, 1}}});
  EXPECT_EQ(s.skipped(), 1u);
  EXPECT_EQ(s.concepts().size(), 2u);
  EXPECT_THROW(ConceptSampler(lists, {{"A", {1, 0}}, {"B", {0, 1, 0}}}), Error);
  EXPECT_THROW(ConceptSampler(lists, {{"A", {0, 0}}, {"B", {0, 1}}}), Error);
  std::mt19937_64 rng(1);
  EXPECT_THROW(s.sample(3, 0.2, rng), Error);
}

}  // namespace
}  // namespace pcm::synth
