// pcm synth compose / gsm8k-chat: deterministic from the seed, every kept answer grades equal to the
// exactly computed one, concept values checked against brute force, --exclude and decontamination
// counts, the sampler's programmatic inputs, and GSM8K's annotation/#### conversion.
#include <gtest/gtest.h>

#include <fstream>
#include <numeric>
#include <regex>

#include "eval/answer_extract.h"
#include "eval/math_grader.h"
#include "synth/compose/composer.h"
#include "synth/compose/gsm8k_chat.h"
#include "test_util.h"
#include "util/error.h"

namespace pcm::synth::compose {
namespace {

std::vector<int64_t> numbers_in(const std::string& s) {
  std::vector<int64_t> v;
  static const std::regex re("[0-9]+");
  for (auto it = std::sregex_iterator(s.begin(), s.end(), re); it != std::sregex_iterator(); ++it) v.push_back(std::stoll(it->str()));
  return v;
}

const Concept& by_id(const std::string& id) {
  for (const auto& c : concept_bank())
    if (c.id == id) return c;
  throw std::runtime_error("no concept " + id);
}

TEST(Compose, SameSeedSameProblemsOtherSeedOthers) {
  ComposeOptions o;
  o.count = 200;
  ComposeStats s1, s2, s3;
  auto a = compose_problems(o, &s1), b = compose_problems(o, &s2);
  o.seed = 2;
  auto c = compose_problems(o, &s3);
  ASSERT_EQ(a.size(), 200u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].problem, b[i].problem);
    EXPECT_EQ(a[i].solution, b[i].solution);
  }
  size_t same = 0;
  for (size_t i = 0; i < a.size(); ++i) same += a[i].problem == c[i].problem;
  EXPECT_LT(same, 20u);
}

TEST(Compose, EveryKeptAnswerGradesAndIsRationaleFirst) {
  ComposeOptions o;
  o.count = 300;
  ComposeStats st;
  for (const auto& p : compose_problems(o, &st)) {
    ASSERT_EQ(p.solution.rfind("<think>\nRationale: ", 0), 0u) << p.solution;
    EXPECT_LT(p.solution.find("Plan:"), p.solution.find("Step 1:"));
    EXPECT_LT(p.solution.find("Step 1:"), p.solution.find("</think>\n\\boxed{"));
    auto ex = eval::extract_answer(p.solution, false);
    ASSERT_TRUE(ex.found());
    EXPECT_TRUE(eval::grade_math_answer(ex.answer, p.answer.latex()).correct);
    EXPECT_GE(p.concepts.size(), 2u);
    EXPECT_LE(p.concepts.size(), 4u);
  }
  EXPECT_EQ(st.grader_rejected, 0);
  EXPECT_EQ(st.kept, 300);
  int64_t levels = 0;
  for (const auto& [k, v] : st.level_histogram) levels += v;
  EXPECT_EQ(levels, 300);
}

TEST(Compose, ConceptValuesMatchBruteForce) {
  std::mt19937_64 rng(5);
  for (int64_t x = 3; x <= 30; ++x) {
    auto p = by_id("combinations").make(x, std::to_string(x), "A", rng);
    ASSERT_TRUE(p);
    auto nums = numbers_in(p->question);  // members, committee size
    const int64_t n = nums[0], k = nums[1];
    std::vector<int64_t> row(n + 1, 0);  // Pascal's triangle, row n
    row[0] = 1;
    for (int64_t i = 1; i <= n; ++i)
      for (int64_t j = i; j >= 1; --j) row[j] += row[j - 1];
    EXPECT_EQ(p->value.num, row[k]) << p->question;
  }
  for (int64_t x = 2; x <= 2000; x += 37) {
    auto p = by_id("divisor_count").make(x, std::to_string(x), "A", rng);
    ASSERT_TRUE(p);
    int64_t c = 0;
    for (int64_t d = 1; d <= x; ++d) c += x % d == 0;
    EXPECT_EQ(p->value.num, c);
    auto g = by_id("gcd").make(x, std::to_string(x), "B", rng);
    ASSERT_TRUE(g);
    EXPECT_EQ(g->value.num, std::gcd(x, numbers_in(g->question).back()));
  }
  auto pr = by_id("prime_count").make(100, "100", "C", rng);
  ASSERT_TRUE(pr);
  EXPECT_EQ(pr->value.num, 25);
  auto q = by_id("probability_red").make(6, "6", "D", rng);
  ASSERT_TRUE(q);
  const int64_t blue = numbers_in(q->question)[1], g = std::gcd<int64_t>(6, 6 + blue);
  EXPECT_EQ(q->value.num, 6 / g);
  EXPECT_EQ(q->value.den, (6 + blue) / g);
  EXPECT_FALSE(by_id("combinations").make(31, "31", "A", rng)) << "out of range inputs are refused";
}

TEST(Compose, ExcludeDropsTrainingProblemsAndCountsThem) {
  ComposeOptions t;
  t.seed = 2;
  t.count = 100;
  ComposeStats plain;
  auto before = compose_problems(t, &plain);
  for (size_t i = 0; i < 10; ++i) t.exclude.insert(before[i].problem);  // as if they were training problems
  ComposeStats ts;
  auto after = compose_problems(t, &ts);
  EXPECT_EQ(ts.excluded, 10);
  EXPECT_EQ(after.size(), 100u);
  for (const auto& p : after) EXPECT_EQ(t.exclude.count(p.problem), 0u);
}

TEST(Compose, BenchmarkContaminationIsDroppedWithItsSource) {
  ComposeOptions o;
  o.count = 50;
  ComposeStats st;
  auto first = compose_problems(o, &st);
  test::TempDir dir;
  {
    std::ofstream f(dir.file("bench.jsonl"));
    f << nlohmann::json({{"problem", first[3].problem}}).dump() << "\n";
  }
  o.benchmark_files = {dir.file("bench.jsonl")};
  ComposeStats st2;
  auto again = compose_problems(o, &st2);
  EXPECT_GE(st2.contaminated, 1);
  ASSERT_FALSE(st2.contamination_examples.empty());
  EXPECT_NE(st2.contamination_examples[0].find("bench.jsonl:1"), std::string::npos);
  for (const auto& p : again) EXPECT_NE(p.problem, first[3].problem);
}

TEST(Compose, SamplerInputsCoverTheBank) {
  test::TempDir dir;
  {
    std::ofstream f(dir.file("seeds.jsonl"));
    f << R"({"question": "A shop sells shirts at a 20% discount. What is the average cost per hour?"})" << "\n";
    f << R"({"question": "No concept words here."})" << "\n";
  }
  auto in = build_sampler_inputs({dir.file("seeds.jsonl")}, 0);
  EXPECT_EQ(in.embeddings.size(), concept_bank().size());
  EXPECT_EQ(in.lists.size(), concept_bank().size() + 1);  // singletons + the one seed with two or more concepts
  EXPECT_GE(in.lists.back().size(), 2u);
  test::TempDir bad;
  {
    std::ofstream f(bad.file("seeds.jsonl"));
    f << R"({"text": "x"})" << "\n";
  }
  try {
    build_sampler_inputs({bad.file("seeds.jsonl")}, 0);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("seeds.jsonl:1: no question"), std::string::npos) << e.what();
  }
}

TEST(Gsm8kChat, AnnotationsAndFinalAnswer) {
  auto s = convert_gsm8k_answer("Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.\nSo 0.2 x 50 = $<<0.2*50=10>>10.\n#### 1,000", "f:1");
  EXPECT_EQ(s.worked, "Weng earns 12/60 = $0.2 per minute.\nSo 0.2 x 50 = $10.");
  EXPECT_EQ(s.answer, "1000");
  EXPECT_THROW(convert_gsm8k_answer("no final line", "f:2"), Error);
  try {
    convert_gsm8k_answer("a <<1+1=2 b\n#### 2", "f.jsonl:7");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("f.jsonl:7: unclosed '<<'"), std::string::npos);
  }
}

TEST(Gsm8kChat, RowsAreChatWithBoxedAnswerAndDecontaminated) {
  test::TempDir dir;
  {
    std::ofstream f(dir.file("train.jsonl"));
    f << R"({"question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?", "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72"})" << "\n";
    f << R"({"question": "Tom has 3 apples and buys 4 more apples at the market on Sunday morning. How many apples does Tom have now?", "answer": "3+4=<<3+4=7>>7\n#### 7"})" << "\n";
    std::ofstream b(dir.file("bench.jsonl"));
    b << R"({"question": "Tom has 3 apples and buys 4 more apples at the market on Sunday morning. How many apples does Tom have now?", "answer": "7"})" << "\n";
  }
  Gsm8kChatStats st;
  auto rows = gsm8k_chat_rows(dir.file("train.jsonl"), {dir.file("bench.jsonl")}, &st);
  EXPECT_EQ(st.rows, 2);
  EXPECT_EQ(st.kept, 1);
  EXPECT_EQ(st.contaminated, 1);
  ASSERT_EQ(rows.size(), 1u);
  const auto& m = rows[0]["messages"];
  EXPECT_EQ(m[0]["role"], "user");
  EXPECT_EQ(m[0]["content"].get<std::string>().find("\nPlease reason step by step"), std::string(rows[0]["problem"]).size());
  EXPECT_EQ(m[1]["content"], "<think>\nNatalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips altogether in April and May.\n</think>\n\\boxed{72}");
}

}  // namespace
}  // namespace pcm::synth::compose
