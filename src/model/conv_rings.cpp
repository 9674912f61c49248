#include "model/conv_rings.h"

#include "util/error.h"

namespace pcm {

void conv_windows_as_rings(std::span<const float> from, std::span<float> to, int64_t layers, int64_t C, int64_t K,
                           int64_t n, bool to_rings) {
  PCM_CHECK(static_cast<int64_t>(from.size()) == layers * C * K && to.size() == from.size() && K > 0 && n >= 0,
            "conv windows: {} values into {} for {} layers of {} x {} after {} tokens", from.size(), to.size(), layers,
            C, K, n);
  for (int64_t l = 0; l < layers; ++l)
    for (int64_t k = 0; k < K; ++k) {
      const int64_t row = (n + k) % K;
      for (int64_t c = 0; c < C; ++c) {
        const int64_t window = (l * C + c) * K + k, ring = (l * K + row) * C + c;
        to[static_cast<size_t>(to_rings ? ring : window)] = from[static_cast<size_t>(to_rings ? window : ring)];
      }
    }
}

}  // namespace pcm
