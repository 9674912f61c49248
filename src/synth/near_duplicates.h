// Near-duplicate detection over word n-grams: MinHash signatures with LSH banding to find candidate pairs
// among generated problems (verified by exact Jaccard), and an inverted n-gram index over benchmark
// problems for decontamination (containment either way, so a benchmark problem pasted into a longer one,
// or lightly edited, is caught).
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace pcm::synth {

// Lower-cased alphanumeric words (LaTeX commands and punctuation split off), hashed in n-gram windows.
// A text shorter than n words gives one shingle of all its words. Sorted, unique.
std::vector<uint64_t> word_shingles(const std::string& text, int ngram);
double jaccard(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b);  // sorted unique inputs
size_t intersection_size(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b);

struct MinHashOptions {
  int ngram = 3;
  int num_perm = 128;
  double threshold = 0.7;  // Jaccard at or above which two problems are duplicates
};

// Items are added in a fixed order; an item is a duplicate when it is within `threshold` of one added
// before it (the earlier one is kept).
class MinHashDeduper {
 public:
  explicit MinHashDeduper(MinHashOptions options);
  // Returns the index (in add order) of an earlier near-duplicate, or -1 after adding the text as new.
  struct Match {
    int64_t index = -1;
    double similarity = 0.0;
  };
  Match add(const std::string& text);
  int bands() const { return bands_; }
  int rows() const { return rows_; }

 private:
  std::vector<uint64_t> signature(const std::vector<uint64_t>& shingles) const;
  MinHashOptions options_;
  int bands_ = 0, rows_ = 0;
  std::vector<uint64_t> seeds_;
  std::vector<std::vector<uint64_t>> kept_shingles_;  // by add index (empty for duplicates)
  std::vector<std::unordered_map<uint64_t, std::vector<int64_t>>> buckets_;
  int64_t added_ = 0;
};

struct BenchmarkHit {
  int64_t index = -1;      // into the index's items; -1 = clean
  double similarity = 0.0;  // max(|A∩B|/|A|, |A∩B|/|B|)
};

class ContaminationIndex {
 public:
  ContaminationIndex(int ngram, double threshold, size_t min_shingles = 8)
      : ngram_(ngram), threshold_(threshold), min_shingles_(min_shingles) {}
  void add(const std::string& source, const std::string& text);
  BenchmarkHit check(const std::string& text) const;
  size_t size() const { return sources_.size(); }
  const std::string& source(int64_t i) const { return sources_[i]; }

 private:
  int ngram_;
  double threshold_;
  size_t min_shingles_;
  std::vector<std::string> sources_;  // "aime24.jsonl:17"
  std::vector<size_t> sizes_;
  std::unordered_map<uint64_t, std::vector<int32_t>> postings_;
};

}  // namespace pcm::synth
