// The CUDA pool's conv rings against SequenceState's windows in time order (src/model/conv_rings.h).
#include "model/conv_rings.h"

#include <gtest/gtest.h>

#include <vector>

#include "util/error.h"

namespace pcm {
namespace {

std::vector<float> rotated(const std::vector<float>& from, int64_t layers, int64_t C, int64_t K, int64_t n,
                           bool to_rings) {
  std::vector<float> to(from.size());
  conv_windows_as_rings(from, to, layers, C, K, n, to_rings);
  return to;
}

TEST(ConvRings, PositionsLandInTheirRows) {
  // One layer, C = 2, K = 4; channel c's window in time order is c*10 + {0, 1, 2, 3} (3 the newest).
  const std::vector<float> windows = {0, 1, 2, 3, 10, 11, 12, 13};
  // After 4 tokens (positions 0..3) ring row r holds position r.
  EXPECT_EQ(rotated(windows, 1, 2, 4, 4, true), (std::vector<float>{0, 10, 1, 11, 2, 12, 3, 13}));
  // After 6 tokens (positions 2..5): position 5, the newest, in row 1; position 2, the oldest, in row 2.
  EXPECT_EQ(rotated(windows, 1, 2, 4, 6, true), (std::vector<float>{2, 12, 3, 13, 0, 10, 1, 11}));
}

TEST(ConvRings, RoundTripsEveryPositionAndLayer) {
  std::vector<float> windows(3 * 5 * 4);
  for (size_t i = 0; i < windows.size(); ++i) windows[i] = static_cast<float>(i);
  for (int64_t n : {0, 1, 2, 3, 7, 1000001}) {
    const auto rings = rotated(windows, 3, 5, 4, n, true);
    EXPECT_EQ(rotated(rings, 3, 5, 4, n, false), windows) << "after " << n << " tokens";
  }
}

TEST(ConvRings, WrongSizesAreRefused) {
  const std::vector<float> windows(8);
  std::vector<float> out(8), short_out(7);
  EXPECT_THROW(conv_windows_as_rings(windows, out, 2, 2, 4, 0, true), Error);
  EXPECT_THROW(conv_windows_as_rings(windows, out, 1, 2, 4, -1, true), Error);
  EXPECT_THROW(conv_windows_as_rings(windows, short_out, 1, 2, 4, 0, true), Error);
}

}  // namespace
}  // namespace pcm
