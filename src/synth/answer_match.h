// How solve's self-consistency rule decides that two final answers agree. The default is `pcm eval`'s
// math grader (symbolic equivalence: 0.5 and \frac{1}{2} agree); ExactAnswerMatcher compares normalised
// strings.
#pragma once
#include <memory>
#include <string>

namespace pcm::synth {

class AnswerMatcher {
 public:
  virtual ~AnswerMatcher() = default;
  virtual bool same(const std::string& a, const std::string& b) const = 0;
  virtual const char* name() const = 0;
};

// Exact match after light normalisation: whitespace removed, surrounding $...$ and a trailing period
// dropped, \left/\right and \dfrac/\tfrac spelled as \frac, "\text{...}" units kept as written.
class ExactAnswerMatcher : public AnswerMatcher {
 public:
  bool same(const std::string& a, const std::string& b) const override { return normalise(a) == normalise(b); }
  const char* name() const override { return "exact"; }
  static std::string normalise(const std::string& answer);
};

// pcm eval's math grader (thread-safe).
class MathAnswerMatcher : public AnswerMatcher {
 public:
  bool same(const std::string& a, const std::string& b) const override;
  const char* name() const override { return "math"; }
};

std::unique_ptr<AnswerMatcher> default_answer_matcher();

}  // namespace pcm::synth
