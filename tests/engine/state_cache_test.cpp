#include "engine/state_cache.h"

#include <gtest/gtest.h>

#include "model/config.h"

namespace pcm {
namespace {

Mamba2Config tiny_config() {
  Mamba2Config c;
  c.vocab_size = 16;
  c.hidden_size = 8;
  c.num_layers = 1;
  c.num_heads = 2;
  c.head_dim = 8;
  c.n_groups = 1;
  c.state_size = 4;
  c.conv_kernel = 4;
  c.chunk_size = 4;
  return c;
}

SequenceState marked(const Mamba2Config& c, float mark) {
  SequenceState s(c);
  std::fill(s.ssm.begin(), s.ssm.end(), mark);
  std::fill(s.conv.begin(), s.conv.end(), mark);
  return s;
}

TEST(StateCache, LongestCachedPrefixWins) {
  auto c = tiny_config();
  StateCache cache(1 << 20);
  cache.put(std::vector<int32_t>{1, 2}, marked(c, 2.0f));
  cache.put(std::vector<int32_t>{1, 2, 3, 4}, marked(c, 4.0f));
  cache.put(std::vector<int32_t>{9, 9, 9}, marked(c, 9.0f));
  SequenceState out(c);
  std::vector<float> logits;
  auto hit = cache.lookup(std::vector<int32_t>{1, 2, 3, 4, 5, 6}, out, &logits);
  EXPECT_EQ(hit.length, 4);
  EXPECT_FALSE(hit.has_logits);
  EXPECT_EQ(out.ssm[0], 4.0f);
  hit = cache.lookup(std::vector<int32_t>{1, 2, 3, 7}, out, &logits);
  EXPECT_EQ(hit.length, 2);
  EXPECT_EQ(out.ssm[0], 2.0f);
  hit = cache.lookup(std::vector<int32_t>{5, 1, 2}, out, &logits);
  EXPECT_EQ(hit.length, 0);
}

TEST(StateCache, WholePromptHitNeedsLogits) {
  auto c = tiny_config();
  StateCache cache(1 << 20);
  cache.put(std::vector<int32_t>{1, 2, 3}, marked(c, 3.0f));
  cache.put(std::vector<int32_t>{1, 2}, marked(c, 2.0f));
  SequenceState out(c);
  std::vector<float> logits;
  // No logits stored for {1,2,3}: generation would need them, so the shorter prefix is used.
  auto hit = cache.lookup(std::vector<int32_t>{1, 2, 3}, out, &logits);
  EXPECT_EQ(hit.length, 2);
  std::vector<float> l(16, 0.5f);
  cache.put(std::vector<int32_t>{1, 2, 3}, marked(c, 3.0f), l);
  hit = cache.lookup(std::vector<int32_t>{1, 2, 3}, out, &logits);
  EXPECT_EQ(hit.length, 3);
  EXPECT_TRUE(hit.has_logits);
  EXPECT_EQ(logits, l);
  EXPECT_EQ(out.ssm[0], 3.0f);
}

TEST(StateCache, EvictsLeastRecentlyUsedWithinBudget) {
  auto c = tiny_config();
  SequenceState s = marked(c, 1.0f);
  const size_t one = StateCache::entry_bytes(s, 0, 2);
  StateCache cache(3 * one + one / 2);  // room for three entries
  cache.put(std::vector<int32_t>{1, 1}, s);
  cache.put(std::vector<int32_t>{2, 2}, s);
  cache.put(std::vector<int32_t>{3, 3}, s);
  SequenceState out(c);
  EXPECT_EQ(cache.lookup(std::vector<int32_t>{1, 1, 5}, out, nullptr).length, 2);  // {1,1} is now most recent
  cache.put(std::vector<int32_t>{4, 4}, s);  // evicts {2,2}
  EXPECT_EQ(cache.entries(), 3u);
  EXPECT_LE(cache.bytes(), cache.budget());
  EXPECT_EQ(cache.lookup(std::vector<int32_t>{2, 2, 5}, out, nullptr).length, 0);
  EXPECT_EQ(cache.lookup(std::vector<int32_t>{1, 1, 5}, out, nullptr).length, 2);
  EXPECT_EQ(cache.lookup(std::vector<int32_t>{4, 4, 5}, out, nullptr).length, 2);
  EXPECT_EQ(cache.stats().evictions, 1);
}

TEST(StateCache, EntryLargerThanBudgetIsRejectedAndOffCacheIsInert) {
  auto c = tiny_config();
  SequenceState s = marked(c, 1.0f);
  StateCache small(StateCache::entry_bytes(s, 0, 1) - 1);
  small.put(std::vector<int32_t>{1}, s);
  EXPECT_EQ(small.entries(), 0u);
  EXPECT_EQ(small.stats().rejected, 1);
  StateCache off(0);
  EXPECT_FALSE(off.enabled());
  off.put(std::vector<int32_t>{1}, s);
  SequenceState out(c);
  EXPECT_EQ(off.lookup(std::vector<int32_t>{1, 2}, out, nullptr).length, 0);
}

TEST(StateCache, SameKeyRefreshesInPlace) {
  auto c = tiny_config();
  StateCache cache(1 << 20);
  cache.put(std::vector<int32_t>{7, 8}, marked(c, 1.0f));
  cache.put(std::vector<int32_t>{7, 8}, marked(c, 5.0f));
  EXPECT_EQ(cache.entries(), 1u);
  SequenceState out(c);
  EXPECT_EQ(cache.lookup(std::vector<int32_t>{7, 8, 9}, out, nullptr).length, 2);
  EXPECT_EQ(out.ssm[0], 5.0f);
}

}  // namespace
}  // namespace pcm
