// StateCache: an LRU cache of SequenceState snapshots keyed by the token prefix they cover, under a byte
// budget. A Mamba-2 state is fixed-size whatever the prefix length, so a cached system prompt or a
// conversation so far costs the same memory as a one-token prefix, and a request that extends a cached
// prefix only prefills its new tokens.
//
// Lookup finds the longest cached key that is a prefix of the query. A key equal to the whole query is
// usable only when its entry also holds the logits after its last token (generation can start from them
// without running the model); otherwise at least one token must still be fed to get logits.
//
// Not thread-safe: the engine thread owns it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <span>
#include <unordered_map>
#include <vector>

#include "model/state.h"

namespace pcm {

struct StateCacheStats {
  int64_t lookups = 0, hits = 0, exact_hits = 0, tokens_reused = 0;
  int64_t puts = 0, evictions = 0, rejected = 0;  // rejected: an entry larger than the whole budget
  size_t bytes = 0, entries = 0, budget = 0;
};

class StateCache {
 public:
  explicit StateCache(size_t budget_bytes);

  bool enabled() const { return budget_ > 0; }

  struct Hit {
    int64_t length = 0;         // tokens covered by the copied state (0 = miss)
    bool has_logits = false;    // `logits` holds the distribution after token length-1
  };
  // Copies the state of the longest usable cached prefix of `tokens` into `state` (and its logits into
  // `logits` when the hit covers all of `tokens`), and marks the entry most recently used.
  Hit lookup(std::span<const int32_t> tokens, SequenceState& state, std::vector<float>* logits);

  // Stores a copy of `state`, which covers exactly `tokens`, with the logits after the last token
  // (optional). Replaces an entry with the same key; evicts least recently used entries to fit.
  void put(std::span<const int32_t> tokens, const SequenceState& state, std::span<const float> logits = {});

  void clear();
  StateCacheStats stats() const {
    StateCacheStats s = stats_;
    s.bytes = bytes_;
    s.entries = lru_.size();
    return s;
  }
  size_t bytes() const { return bytes_; }
  size_t entries() const { return lru_.size(); }
  size_t budget() const { return budget_; }

  // Bytes one entry of this shape is charged (state + logits + key + bookkeeping).
  static size_t entry_bytes(const SequenceState& state, size_t logits, size_t key_tokens);

 private:
  struct Entry {
    std::vector<int32_t> key;
    uint64_t hash = 0;
    SequenceState state;
    std::vector<float> logits;
    size_t bytes = 0;
  };
  using List = std::list<Entry>;

  void erase(List::iterator it);

  size_t budget_;
  size_t bytes_ = 0;
  List lru_;                                        // front = most recently used
  std::unordered_map<uint64_t, List::iterator> by_hash_;  // hash of the whole key -> entry
  std::map<int64_t, int64_t> lengths_;              // key length -> number of entries with it
  StateCacheStats stats_;
};

// Hash of a token prefix, extended one token at a time (prefix_hash(h, t) for each token in order).
uint64_t token_hash_step(uint64_t h, int32_t token);
inline constexpr uint64_t kTokenHashSeed = 0x6a09e667f3bcc909ull;

}  // namespace pcm
