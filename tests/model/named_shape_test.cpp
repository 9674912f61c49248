// Published shapes by name, with the commands' --layers override; an unknown name is an error naming it.
#include <gtest/gtest.h>

#include "model/config.h"
#include "test_util.h"

namespace pcm {
namespace {

TEST(NamedShape, LayersOverrideOnlyWhenPositive) {
  const Mamba2Config full = named_shape("codestral-7b");
  EXPECT_EQ(full.num_layers, 64);
  EXPECT_EQ(full.hidden_size, 4096);
  EXPECT_EQ(named_shape("codestral-7b", 0).num_layers, 64);
  const Mamba2Config two = named_shape("codestral-7b", 2);
  EXPECT_EQ(two.num_layers, 2);
  EXPECT_EQ(two.hidden_size, full.hidden_size);
  EXPECT_EQ(two.state_size, full.state_size);
}

TEST(NamedShape, UnknownNameIsNamed) {
  const std::string message = test::error_of([] { named_shape("mamba9-1t", 2); });
  EXPECT_NE(message.find("mamba9-1t"), std::string::npos) << message;
}

}  // namespace
}  // namespace pcm
