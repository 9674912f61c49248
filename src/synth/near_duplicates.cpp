#include "synth/near_duplicates.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>

#include "util/error.h"

namespace pcm::synth {

namespace {

uint64_t fnv1a(const std::string& s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::vector<std::string> words(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c >= 0x80) {
      cur.push_back(static_cast<char>(std::tolower(c)));
    } else if (!cur.empty()) {
      out.push_back(cur);
      cur.clear();
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

}  // namespace

std::vector<uint64_t> word_shingles(const std::string& text, int ngram) {
  PCM_CHECK(ngram >= 1, "n-gram size must be >= 1 (got {})", ngram);
  std::vector<std::string> w = words(text);
  std::vector<uint64_t> out;
  if (w.empty()) return out;
  size_t n = static_cast<size_t>(ngram);
  size_t count = w.size() < n ? 1 : w.size() - n + 1;
  for (size_t i = 0; i < count; ++i) {
    uint64_t h = 1469598103934665603ull;
    for (size_t j = i; j < std::min(w.size(), i + n); ++j) h = fnv1a(w[j] + '\x1f', h);
    out.push_back(h);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

size_t intersection_size(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b) {
  size_t i = 0, j = 0, n = 0;
  while (i < a.size() && j < b.size()) {
    if (a[i] < b[j]) ++i;
    else if (b[j] < a[i]) ++j;
    else { ++n; ++i; ++j; }
  }
  return n;
}

double jaccard(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b) {
  if (a.empty() && b.empty()) return 1.0;
  size_t inter = intersection_size(a, b);
  return static_cast<double>(inter) / static_cast<double>(a.size() + b.size() - inter);
}

MinHashDeduper::MinHashDeduper(MinHashOptions options) : options_(options) {
  PCM_CHECK(options_.num_perm >= 4, "minhash num_perm must be >= 4 (got {})", options_.num_perm);
  PCM_CHECK(options_.threshold > 0.0 && options_.threshold <= 1.0, "dedup threshold must be in (0, 1] (got {})",
            options_.threshold);
  // The most rows per band whose LSH threshold (1/b)^(1/r) stays 0.1 below ours, so true pairs are
  // almost never missed; candidates are then verified exactly.
  rows_ = 1;
  for (int r = 1; r <= options_.num_perm; ++r) {
    int b = options_.num_perm / r;
    if (b < 1) break;
    if (std::pow(1.0 / b, 1.0 / r) <= options_.threshold - 0.1) rows_ = r;
  }
  bands_ = options_.num_perm / rows_;
  for (int i = 0; i < bands_ * rows_; ++i) seeds_.push_back(splitmix64(0x5eed0000ull + i));
  buckets_.resize(bands_);
}

std::vector<uint64_t> MinHashDeduper::signature(const std::vector<uint64_t>& shingles) const {
  std::vector<uint64_t> sig(seeds_.size(), std::numeric_limits<uint64_t>::max());
  for (uint64_t s : shingles)
    for (size_t p = 0; p < seeds_.size(); ++p) sig[p] = std::min(sig[p], splitmix64(s ^ seeds_[p]));
  return sig;
}

MinHashDeduper::Match MinHashDeduper::add(const std::string& text) {
  std::vector<uint64_t> shingles = word_shingles(text, options_.ngram);
  std::vector<uint64_t> sig = signature(shingles);
  std::vector<uint64_t> keys(bands_);
  Match best;
  std::vector<int64_t> candidates;
  for (int b = 0; b < bands_; ++b) {
    uint64_t h = 0x1234567ull + static_cast<uint64_t>(b);
    for (int r = 0; r < rows_; ++r) h = splitmix64(h ^ sig[b * rows_ + r]);
    keys[b] = h;
    auto it = buckets_[b].find(h);
    if (it != buckets_[b].end()) candidates.insert(candidates.end(), it->second.begin(), it->second.end());
  }
  std::sort(candidates.begin(), candidates.end());
  candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
  for (int64_t c : candidates) {
    double sim = jaccard(shingles, kept_shingles_[c]);
    if (sim >= options_.threshold && sim > best.similarity) best = {c, sim};
  }
  int64_t me = added_++;
  if (best.index >= 0) {
    kept_shingles_.emplace_back();
    return best;
  }
  for (int b = 0; b < bands_; ++b) buckets_[b][keys[b]].push_back(me);
  kept_shingles_.push_back(std::move(shingles));
  return best;
}

void ContaminationIndex::add(const std::string& source, const std::string& text) {
  std::vector<uint64_t> shingles = word_shingles(text, ngram_);
  int32_t id = static_cast<int32_t>(sources_.size());
  sources_.push_back(source);
  sizes_.push_back(shingles.size());
  for (uint64_t s : shingles) postings_[s].push_back(id);
}

BenchmarkHit ContaminationIndex::check(const std::string& text) const {
  std::vector<uint64_t> shingles = word_shingles(text, ngram_);
  std::unordered_map<int32_t, size_t> overlap;
  for (uint64_t s : shingles) {
    auto it = postings_.find(s);
    if (it != postings_.end())
      for (int32_t id : it->second) overlap[id]++;
  }
  BenchmarkHit best;
  for (const auto& [id, inter] : overlap) {
    size_t smaller = std::min(shingles.size(), sizes_[id]);
    if (smaller < min_shingles_) {
      // Too short for containment to mean anything: only an (almost) exact match counts.
      if (shingles.size() != sizes_[id] || inter != smaller) continue;
    }
    double sim = static_cast<double>(inter) / static_cast<double>(smaller);
    if (sim >= threshold_ && (sim > best.similarity || (sim == best.similarity && id < best.index)))
      best = {id, sim};
  }
  return best;
}

}  // namespace pcm::synth
