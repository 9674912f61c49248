// pass@k against hand-computed values and brute-force enumeration; the summary's means, standard
// errors, groups and lengths on a small example.
#include <gtest/gtest.h>

#include "eval/report.h"
#include "util/error.h"

namespace pcm::eval {
namespace {

TEST(PassAtK, HandComputedAndBoundaries) {
  EXPECT_DOUBLE_EQ(pass_at_k(4, 0, 1), 0.0);
  EXPECT_DOUBLE_EQ(pass_at_k(4, 4, 2), 1.0);
  EXPECT_DOUBLE_EQ(pass_at_k(4, 1, 1), 0.25);
  EXPECT_NEAR(pass_at_k(4, 1, 2), 0.5, 1e-12);        // 1 - C(3,2)/C(4,2) = 1 - 3/6
  EXPECT_NEAR(pass_at_k(5, 2, 2), 1 - 3.0 / 10, 1e-12);  // 1 - C(3,2)/C(5,2)
  EXPECT_NEAR(pass_at_k(10, 3, 4), 1 - 35.0 / 210, 1e-12);
  EXPECT_DOUBLE_EQ(pass_at_k(8, 6, 4), 1.0);  // fewer than k wrong samples
  EXPECT_THROW(pass_at_k(4, 5, 1), Error);
  EXPECT_THROW(pass_at_k(4, 1, 5), Error);
}

TEST(Summary, MeansStandardErrorGroupsAndLengths) {
  std::vector<ProblemSamples> p = {
      {"a", {"Algebra"}, {true, true, false, false}, {10, 20, 30, 40}, 4},
      {"b", {"Algebra"}, {false, false, false, false}, {5, 5, 5, 5}, 3},
      {"c", {"Geometry"}, {true, true, true, true}, {1, 2, 3, 4}, 4},
  };
  json s = summarize(p);
  EXPECT_EQ(s["problems"], 3);
  EXPECT_EQ(s["samples"], 12);
  EXPECT_NEAR(s["pass@1"]["mean"].get<double>(), (0.5 + 0 + 1) / 3, 1e-12);
  // stderr = sample std of {0.5, 0, 1} / sqrt(3) = 0.5 / sqrt(3)
  EXPECT_NEAR(s["pass@1"]["stderr"].get<double>(), 0.5 / std::sqrt(3.0), 1e-12);
  EXPECT_NEAR(s["pass@k"]["2"].get<double>(), (pass_at_k(4, 2, 2) + 0 + 1) / 3, 1e-12);
  EXPECT_TRUE(s["pass@k"].contains("4"));
  EXPECT_FALSE(s["pass@k"].contains("8"));
  EXPECT_NEAR(s["groups"]["Algebra"]["pass@1"].get<double>(), 0.25, 1e-12);
  EXPECT_NEAR(s["format_valid_rate"].get<double>(), 11.0 / 12, 1e-12);
  EXPECT_NEAR(s["length"]["p50"].get<double>(), 5.0, 1e-12);
}

}  // namespace
}  // namespace pcm::eval
