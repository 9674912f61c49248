#include "synth/parsers.h"

#include <gtest/gtest.h>

namespace pcm::synth {
namespace {

using Strings = std::vector<std::string>;

TEST(ConceptParser, PythonListInCodeBlockAfterReasoning) {
  std::string text = R"X(The problem asks for the number of minutes, so we need rates [speed = distance / time].
Key ideas: the relation between speed, distance and time; solving a system of equations.

```python
concepts = [
    "Relationship between distance, speed and time (d = s * t)",
    'Solving systems of two equations in two unknowns',
    "Converting between hours and minutes",  # units
    "Rational equations: clearing denominators \\frac{9}{s}",
    "Quadratic equations and selecting the positive root",
]
```)X";
  auto r = parse_concept_list(text);
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(*r.value, (Strings{"Relationship between distance, speed and time (d = s * t)",
                               "Solving systems of two equations in two unknowns", "Converting between hours and minutes",
                               "Rational equations: clearing denominators \\frac{9}{s}",
                               "Quadratic equations and selecting the positive root"}));
}

TEST(ConceptParser, LastListWinsAndLatexBackslashesSurvive) {
  std::string text = "First draft: ['a', 'b']\nFinal answer:\n['Properties of $\\sqrt{x}$', \"Vieta's formulas\"]";
  auto r = parse_concept_list(text);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r.value, (Strings{"Properties of $\\sqrt{x}$", "Vieta's formulas"}));
}

TEST(ConceptParser, OneItemPerLineWithUnescapedApostrophes) {
  std::string text = "```python\n[\n    'Vieta's formulas for sums of roots',\n    'Euler's totient function',\n"
                     "    \"Fermat's little theorem\"\n]\n```";
  auto r = parse_concept_list(text);
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(*r.value, (Strings{"Vieta's formulas for sums of roots", "Euler's totient function", "Fermat's little theorem"}));
  // Not every line quoted: not a list.
  EXPECT_FALSE(parse_python_string_list("[\n'a',\nplain words\n]").ok());
}

TEST(ConceptParser, KnowledgePointLinesWithMarkdown) {
  std::string text =
      "Here are the concepts:\n"
      "Knowledge Point: Arithmetic sequences and their sums\n"
      "**Knowledge Point:** Modular arithmetic\n"
      "knowledge point 3: Prime factorization  \n"
      "Knowledge Point: Modular arithmetic\n"  // repeated: dropped
      "Knowledge Point:   \n";                 // empty: dropped
  auto r = parse_concept_list(text);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r.value, (Strings{"Arithmetic sequences and their sums", "Modular arithmetic", "Prime factorization"}));
}

TEST(ConceptParser, BrokenAnswersGiveReasons) {
  EXPECT_EQ(parse_concept_list("I think the concepts are algebra and geometry.").reason, "no_concepts_found");
  // Unterminated list and unterminated string.
  EXPECT_FALSE(parse_concept_list("```python\n['Algebra', 'Geometry\n```").ok());
  EXPECT_FALSE(parse_concept_list("[1, 2, 3]").ok());  // numbers, not concepts
  EXPECT_FALSE(parse_concept_list("[]").ok());
  // A list of numbers then knowledge points: falls back to the lines.
  auto r = parse_concept_list("Interval [0, 1]\nKnowledge Point: Continuity");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r.value, Strings{"Continuity"});
}

TEST(RationaleProblem, WellFormed) {
  std::string text =
      "Sure! Here is my design.\n<!-- BEGIN RATIONALE -->\n1. Start from modular arithmetic...\n"
      "<!-- END RATIONALE -->\n\n<!-- BEGIN PROBLEM -->\nFind the remainder when $2^{100}$ is divided by 7.\n"
      "<!-- END PROBLEM -->\nThanks";
  auto r = parse_rationale_problem(text);
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(r.value->rationale, "1. Start from modular arithmetic...");
  EXPECT_EQ(r.value->problem, "Find the remainder when $2^{100}$ is divided by 7.");
}

TEST(RationaleProblem, TagsAreCaseAndSpaceInsensitive) {
  auto r = parse_rationale_problem("<!--begin   rationale-->why<!-- End Rationale --><!--BEGIN PROBLEM-->what?<!--END PROBLEM-->");
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(r.value->problem, "what?");
}

TEST(RationaleProblem, BrokenTagsGiveReasons) {
  const std::string R = "<!-- BEGIN RATIONALE -->r<!-- END RATIONALE -->";
  const std::string P = "<!-- BEGIN PROBLEM -->p<!-- END PROBLEM -->";
  EXPECT_EQ(parse_rationale_problem("Just a problem: find x.").reason, "missing_rationale");
  EXPECT_EQ(parse_rationale_problem(R + "Find x.").reason, "missing_problem");
  EXPECT_EQ(parse_rationale_problem(R + "<!-- BEGIN PROBLEM -->Find x.").reason, "unclosed_problem");
  EXPECT_EQ(parse_rationale_problem("<!-- BEGIN RATIONALE -->r " + P).reason, "unclosed_rationale");
  EXPECT_EQ(parse_rationale_problem(R + P + P).reason, "multiple_problems");
  EXPECT_EQ(parse_rationale_problem(R + R + P).reason, "multiple_rationales");
  EXPECT_EQ(parse_rationale_problem(P + R).reason, "problem_before_rationale");
  EXPECT_EQ(parse_rationale_problem(R + "<!-- BEGIN PROBLEM -->  \n<!-- END PROBLEM -->").reason, "empty_problem");
  EXPECT_EQ(parse_rationale_problem(R + "<!-- END PROBLEM -->p<!-- BEGIN PROBLEM -->").reason, "misordered_problem_tags");
}

TEST(Judgement, ReferenceShapedAnswer) {
  std::string text = R"X(### 1. FORMAT
Rating: Perfect
Justification: both blocks are tagged.

### 2. FACTUAL ACCURACY
Rating: Perfect
Justification: the arithmetic is right; nothing bad here.

### 3. DIFFICULTY ALIGNMENT
Rating: Acceptable
Justification: closer to AMC12 than AIME.

### 4. CONCEPT COVERAGE
Rating: Perfect
Justification: all five are used.

### 5. SOLVABILITY
Rating: Perfect
Justification: unique answer.

Final Judgement: perfect)X";
  auto r = parse_judgement(text);
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(r.value->final_verdict, Rating::Perfect);
  EXPECT_EQ(r.value->criteria[0], Rating::Perfect);
  EXPECT_EQ(r.value->criteria[1], Rating::Perfect);  // "bad" in the justification does not count
  EXPECT_EQ(r.value->criteria[2], Rating::Acceptable);
  EXPECT_EQ(r.value->criteria[4], Rating::Perfect);
}

TEST(Judgement, MixedCaseMarkdownAndTrailingText) {
  std::string text =
      "**Format**: BAD - tags missing.\n**Factual accuracy**: acceptable\n**Solvability** - PERFECT\n\n"
      "**FINAL JUDGEMENT:** 'Bad'\n\nLet me know if you need anything else!";
  auto r = parse_judgement(text);
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(r.value->final_verdict, Rating::Bad);
  EXPECT_EQ(r.value->criteria[0], Rating::Bad);
  EXPECT_EQ(r.value->criteria[1], Rating::Acceptable);
  EXPECT_FALSE(r.value->criteria[2].has_value());
  EXPECT_EQ(r.value->criteria[4], Rating::Perfect);
  // American spelling, bracketed verdict; the last "Final Judgement" wins over a quoted instruction.
  auto r2 = parse_judgement("You asked for 'Final Judgement: [verdict]'.\nFinal Judgment: [Acceptable]");
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2.value->final_verdict, Rating::Acceptable);
}

TEST(Judgement, MissingOrUnrecognisedVerdict) {
  EXPECT_EQ(parse_judgement("Format: Perfect\nSolvability: Perfect").reason, "missing_final_judgement");
  EXPECT_EQ(parse_judgement("Final Judgement: excellent").reason, "unrecognised_final_judgement");
  EXPECT_EQ(parse_judgement("").reason, "missing_final_judgement");
  // "badly" is not "bad".
  EXPECT_EQ(parse_judgement("Final Judgement: badly formed").reason, "unrecognised_final_judgement");
}

TEST(Solution, WellFormedThinkAndBoxed) {
  auto r = parse_solution("<think>\n2^3 = 8, so mod 7 it is 1... \\boxed{wrong} in thought\n</think>\n\nThe remainder is $\\boxed{\\frac{1}{2}}$.");
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(r.value->boxed, "\\frac{1}{2}");
  EXPECT_NE(r.value->reasoning.find("2^3"), std::string::npos);
}

TEST(Solution, ImplicitOpeningTagIsAccepted) {
  auto r = parse_solution("Okay, let me think.\n</think>\nAnswer: \\boxed{42}");
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(r.value->boxed, "42");
}

TEST(Solution, ThinkErrors) {
  EXPECT_EQ(parse_solution("The answer is \\boxed{3}").reason, "missing_think");
  EXPECT_EQ(parse_solution("<think>long reasoning cut off by max_tokens").reason, "unclosed_think");
  EXPECT_EQ(parse_solution("<think>a</think><think>b</think>\\boxed{1}").reason, "multiple_think_blocks");
  EXPECT_EQ(parse_solution("<think>a</think>\n  ").reason, "empty_answer");
  EXPECT_EQ(parse_solution("<think>a</think>So it is 5.").reason, "no_boxed_answer");
  EXPECT_EQ(parse_solution("<think>a</think>\\boxed{\\frac{1}{2}").reason, "unclosed_boxed");
  EXPECT_EQ(parse_solution("Intro <think>a</think>\\boxed{1}").reason, "text_before_think");
  EXPECT_EQ(parse_solution("</think> x <think>\\boxed{1}").reason, "misordered_think");
}

TEST(Boxed, NestedBracesAndFbox) {
  EXPECT_EQ(last_boxed("\\boxed{1} then \\boxed{\\{a, b\\}}").value_or("?"), "\\{a, b\\}");
  EXPECT_EQ(last_boxed("\\boxed{x^{2}+1}").value_or("?"), "x^{2}+1");
  EXPECT_EQ(last_boxed("\\fbox{7}").value_or("?"), "7");
  EXPECT_EQ(last_boxed("\\boxed 5$").value_or("?"), "5");
  EXPECT_FALSE(last_boxed("no box").has_value());
}

}  // namespace
}  // namespace pcm::synth
