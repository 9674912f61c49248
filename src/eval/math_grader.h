// Math answer equivalence, the part people distrust in every harness: normalised string match, then
// structure (tuples and intervals ordered, sets and root lists unordered, matrices, unions, equations),
// then values — integers, exact rationals, radicals, π and e compared symbolically with GiNaC (difference
// simplifies to zero) with numeric evaluation at fixed pseudo-random points as the fallback. Base
// subscripts (10001_2) and number words are read as numbers. Expressions beyond the parser's limits are
// refused rather than evaluated, so each comparison stays within its time budget.
#pragma once
#include <string>
#include <vector>

namespace pcm::eval {

struct MathGradeOptions {
  double numeric_tolerance = 0.0;  // relative; 0 = exact values (OlympiadBench passes its own)
  std::vector<std::string> units;  // unit words to strip (OlympiadBench's `unit`)
  double time_budget_s = 2.0;      // a comparison over budget is wrong, with reason "timeout"
};

struct GradeResult {
  bool correct = false;
  std::string reason;  // "exact match", "equal values", "symbolically equal", "different", "no answer", ...
};

// Thread-safe (gradings are serialised: GiNaC is not thread-safe).
GradeResult grade_math_answer(const std::string& predicted, const std::string& gold, const MathGradeOptions& o = {});

}  // namespace pcm::eval
