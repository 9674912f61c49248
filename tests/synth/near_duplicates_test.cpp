#include "synth/near_duplicates.h"

#include <fmt/format.h>

#include "io/jsonl.h"
#include "test_util.h"

namespace pcm::synth {
namespace {

// The benchmark copies shipped in the repository (data/benchmarks/, from /work/shared/data).
std::string repo_file(const std::string& rel) { return test::testdata("../" + rel); }

std::vector<std::string> problems(const std::string& rel, const char* key, size_t limit) {
  std::vector<std::string> out;
  for (const auto& row : read_jsonl(repo_file(rel))) {
    out.push_back(row[key].get<std::string>());
    if (out.size() == limit) break;
  }
  return out;
}

// Light edits a generator (or a lazy copier) makes: a changed number, a synonym, an added sentence.
std::string lightly_edited(std::string s) {
  size_t digit = s.find_first_of("0123456789");
  if (digit != std::string::npos) s[digit] = s[digit] == '7' ? '8' : '7';
  for (auto [from, to] : {std::pair{"Find", "Determine"}, std::pair{"What is", "Compute"}, std::pair{"find", "determine"}}) {
    size_t p = s.find(from);
    if (p != std::string::npos) { s.replace(p, std::string(from).size(), to); break; }
  }
  return s + " Express your answer in simplest form.";
}

TEST(Shingles, NormaliseCaseAndPunctuation) {
  EXPECT_EQ(word_shingles("Find the SUM, of x!", 2), word_shingles("find the sum of x", 2));
  EXPECT_EQ(word_shingles("two words", 5).size(), 1u);
  EXPECT_TRUE(word_shingles("  ", 3).empty());
  EXPECT_DOUBLE_EQ(jaccard(word_shingles("a b c d", 2), word_shingles("a b c d", 2)), 1.0);
}

TEST(MinHash, FindsEditedCopiesAndKeepsDistinctProblems) {
  std::vector<std::string> originals = problems("data/benchmarks/math500.jsonl", "problem", 150);
  MinHashDeduper dedup({/*ngram=*/3, /*num_perm=*/128, /*threshold=*/0.7});
  int flagged_originals = 0;
  for (const auto& p : originals) flagged_originals += dedup.add(p).index >= 0;
  EXPECT_EQ(flagged_originals, 0);  // 150 real, distinct MATH-500 problems all survive
  // Every edited copy whose true Jaccard reaches the threshold must be found through LSH (no misses),
  // and the ones below it must not be.
  int caught = 0, above = 0;
  for (size_t i = 0; i < originals.size(); i += 3) {
    std::string edited = lightly_edited(originals[i]);
    double truth = jaccard(word_shingles(edited, 3), word_shingles(originals[i], 3));
    auto m = dedup.add(edited);
    if (truth >= 0.7) {
      ++above;
      EXPECT_EQ(m.index, static_cast<int64_t>(i)) << "missed a duplicate with Jaccard " << truth;
      caught += m.index == static_cast<int64_t>(i);
    } else {
      EXPECT_NE(m.index, static_cast<int64_t>(i));
    }
  }
  EXPECT_GE(above, 15);
  EXPECT_EQ(caught, above);
  // An exact repeat is always caught.
  EXPECT_GE(dedup.add(originals[3]).index, 0);
}

TEST(Decontamination, CatchesLightlyEditedBenchmarkProblems) {
  ContaminationIndex index(/*ngram=*/5, /*threshold=*/0.5);
  for (const char* file : {"aime24.jsonl", "amc23.jsonl", "math500.jsonl"}) {
    auto rows = read_jsonl(repo_file(std::string("data/benchmarks/") + file));
    for (size_t i = 0; i < rows.size(); ++i) index.add(fmt::format("{}:{}", file, i + 1), rows[i]["problem"]);
  }
  auto aime = problems("data/benchmarks/aime24.jsonl", "problem", 30);
  for (size_t i = 0; i < aime.size(); ++i) {
    BenchmarkHit hit = index.check(lightly_edited(aime[i]));
    ASSERT_GE(hit.index, 0) << aime[i];
    EXPECT_EQ(index.source(hit.index), fmt::format("aime24.jsonl:{}", i + 1));
  }
  // Embedded inside a longer generated problem: still caught.
  EXPECT_GE(index.check("Consider the following. " + aime[4] + " Then also compute the sum of all such values, "
                        "and give the remainder when that sum is divided by 1000.").index, 0);
  // Real problems that are not in these benchmarks (GSM8K train) are not flagged.
  auto clean = problems("data/benchmarks/gsm8k.jsonl", "question", 300);
  int flagged = 0;
  for (const auto& q : clean) flagged += index.check(q).index >= 0;
  EXPECT_EQ(flagged, 0);
}

}  // namespace
}  // namespace pcm::synth
