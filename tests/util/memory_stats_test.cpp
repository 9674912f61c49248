// The size checks that refuse a run before it allocates: the message names the option, the sizes and the capacity.
#include "util/memory_stats.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace pcm {
namespace {

using test::error_of;

TEST(HumanBytes, TwoDecimalsInTheLargestUnitBelow1024) {
  EXPECT_EQ(human_bytes(4), "4.00 B");
  EXPECT_EQ(human_bytes(1536), "1.50 KiB");
  EXPECT_EQ(human_bytes(3.0 * (1 << 30)), "3.00 GiB");
  EXPECT_EQ(human_bytes(2048.0 * (int64_t{1} << 40)), "2048.00 TiB");
}

TEST(CheckFits, PassesUpToTheRoomAndNamesEverythingPastIt) {
  EXPECT_NO_THROW(check_fits("--cuda-batches 4", 4, 256.0, "sequences", 1024.0, "the GPU's 1.00 KiB"));
  const std::string message =
      error_of([] { check_fits("--cuda-batches 5", 5, 256.0, "sequences", 1024.0, "the GPU's 1.00 KiB"); });
  EXPECT_EQ(message, "--cuda-batches 5: 5 sequences of 256.00 B need 1.25 KiB, more than the GPU's 1.00 KiB");
  EXPECT_NE(error_of([] { check_fits("x", 1, 1.0, "items", -5.0, "nothing left"); }).find("more than nothing left"),
            std::string::npos);
}

TEST(CheckFits, AgainstThisMachinesMemory) {
  EXPECT_NO_THROW(check_fits_in_memory("--batch 2", 2, 1024.0, "rows"));
  const std::string message = error_of([] { check_fits_in_memory("--batch 1000000", 1000000, 1e12, "rows"); });
  EXPECT_EQ(message.rfind("--batch 1000000: 1000000 rows of 931.32 GiB need ", 0), 0u) << message;
  EXPECT_NE(message.find("of memory"), std::string::npos) << message;
}

}  // namespace
}  // namespace pcm
