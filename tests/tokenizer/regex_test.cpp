// Regex::groups: spans of every capture group, the same on one thread whichever patterns ran before (its match data
// is kept per thread and grown to the most groups a pattern has), unset groups as npos.
#include <gtest/gtest.h>

#include <string_view>

#include "tokenizer/regex.h"

namespace pcm {
namespace {

using Span = std::pair<size_t, size_t>;
constexpr size_t npos = std::string_view::npos;

TEST(Regex, GroupsOfPatternsWithDifferentGroupCounts) {
  const Regex one = Regex::bytes("b(c+)");
  const Regex four = Regex::bytes("(a)(x)?(b)(c)");
  const Regex none = Regex::pcre("d");
  const std::string_view s = "abccd";
  for (int round = 0; round < 2; ++round) {  // 1 group, then 4 (the data grows), then 1 again, then 4 again
    EXPECT_EQ(one.groups(s), (std::vector<Span>{{1, 4}, {2, 4}}));
    EXPECT_EQ(four.groups(s), (std::vector<Span>{{0, 3}, {0, 1}, {npos, npos}, {1, 2}, {2, 3}}));
    EXPECT_EQ(one.groups(s), (std::vector<Span>{{1, 4}, {2, 4}})) << "only this pattern's groups";
    EXPECT_EQ(none.groups(s), (std::vector<Span>{{4, 5}}));
  }
  EXPECT_EQ(Regex::text(s, four.groups(s)[2]), "");
  EXPECT_EQ(Regex::text(s, one.groups(s)[1]), "cc");
  EXPECT_TRUE(one.groups(s, 4).empty());
  EXPECT_TRUE(one.groups(s, 99).empty());
}

}  // namespace
}  // namespace pcm
