#include "engine/state_cache.h"

#include <algorithm>

namespace pcm {

uint64_t token_hash_step(uint64_t h, int32_t token) {
  // splitmix64 finaliser over (h, token): cheap, and a 64-bit collision is verified against the key anyway.
  uint64_t z = h ^ (static_cast<uint64_t>(static_cast<uint32_t>(token)) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2));
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

StateCache::StateCache(size_t budget_bytes) : budget_(budget_bytes) { stats_.budget = budget_bytes; }

size_t StateCache::entry_bytes(const SequenceState& state, size_t logits, size_t key_tokens) {
  return state.bytes() + logits * sizeof(float) + key_tokens * sizeof(int32_t) + sizeof(Entry) + 64;
}

void StateCache::erase(List::iterator it) {
  by_hash_.erase(it->hash);
  auto len = lengths_.find(static_cast<int64_t>(it->key.size()));
  if (len != lengths_.end() && --len->second == 0) lengths_.erase(len);
  bytes_ -= it->bytes;
  lru_.erase(it);
}

StateCache::Hit StateCache::lookup(std::span<const int32_t> tokens, SequenceState& state, std::vector<float>* logits) {
  Hit hit;
  if (!enabled()) return hit;
  ++stats_.lookups;
  const int64_t L = static_cast<int64_t>(tokens.size());
  if (L == 0 || lengths_.empty()) return hit;
  std::vector<uint64_t> prefix(static_cast<size_t>(L) + 1);
  prefix[0] = kTokenHashSeed;
  for (int64_t i = 0; i < L; ++i)
    prefix[static_cast<size_t>(i) + 1] = token_hash_step(prefix[static_cast<size_t>(i)], tokens[static_cast<size_t>(i)]);
  // Only lengths some entry has are probed, longest first.
  for (auto it = lengths_.upper_bound(L); it != lengths_.begin();) {
    --it;
    const int64_t len = it->first;
    auto found = by_hash_.find(prefix[static_cast<size_t>(len)]);
    if (found == by_hash_.end()) continue;
    Entry& e = *found->second;
    if (static_cast<int64_t>(e.key.size()) != len || !std::equal(e.key.begin(), e.key.end(), tokens.begin())) continue;
    const bool exact = len == L;
    if (exact && (e.logits.empty() || !logits)) continue;
    state = e.state;  // copy-assign: reuses the slot's buffers, no allocation
    if (exact) *logits = e.logits;
    lru_.splice(lru_.begin(), lru_, found->second);
    hit.length = len;
    hit.has_logits = exact;
    ++stats_.hits;
    if (exact) ++stats_.exact_hits;
    stats_.tokens_reused += len;
    return hit;
  }
  return hit;
}

void StateCache::put(std::span<const int32_t> tokens, const SequenceState& state, std::span<const float> logits) {
  if (!enabled() || tokens.empty()) return;
  const size_t need = entry_bytes(state, logits.size(), tokens.size());
  if (need > budget_) {
    ++stats_.rejected;
    return;
  }
  ++stats_.puts;
  uint64_t h = kTokenHashSeed;
  for (int32_t t : tokens) h = token_hash_step(h, t);
  if (auto found = by_hash_.find(h); found != by_hash_.end()) {
    Entry& e = *found->second;
    if (e.key.size() == tokens.size() && std::equal(e.key.begin(), e.key.end(), tokens.begin())) {
      // Same prefix again: refresh it, keeping logits if the new put has none.
      e.state = state;
      if (!logits.empty()) e.logits.assign(logits.begin(), logits.end());
      bytes_ -= e.bytes;
      e.bytes = entry_bytes(e.state, e.logits.size(), e.key.size());
      bytes_ += e.bytes;
      lru_.splice(lru_.begin(), lru_, found->second);
      while (bytes_ > budget_ && lru_.size() > 1) {
        erase(std::prev(lru_.end()));
        ++stats_.evictions;
      }
      return;
    }
    erase(found->second);  // a 64-bit hash collision: the newer prefix wins
  }
  while (bytes_ + need > budget_ && !lru_.empty()) {
    erase(std::prev(lru_.end()));
    ++stats_.evictions;
  }
  lru_.push_front(Entry{});
  Entry& e = lru_.front();
  e.key.assign(tokens.begin(), tokens.end());
  e.hash = h;
  e.state = state;
  e.logits.assign(logits.begin(), logits.end());
  e.bytes = need;
  bytes_ += need;
  by_hash_[h] = lru_.begin();
  ++lengths_[static_cast<int64_t>(tokens.size())];
}

void StateCache::clear() {
  lru_.clear();
  by_hash_.clear();
  lengths_.clear();
  bytes_ = 0;
}

}  // namespace pcm
