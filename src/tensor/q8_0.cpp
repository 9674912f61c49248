#include "tensor/q8_0.h"

#include <cmath>
#include <cstring>

#include "tensor/dtype.h"
#include "util/error.h"

namespace pcm {

void quantize_row_q8_0(const float* x, uint8_t* out, int64_t n) {
  PCM_CHECK(n % kQ8BlockSize == 0, "Q8_0 rows must hold a multiple of {} values, not {}", kQ8BlockSize, n);
  for (int64_t b = 0; b < n / kQ8BlockSize; ++b, x += kQ8BlockSize, out += kQ8BlockBytes) {
    float amax = 0.0f;
    for (int64_t i = 0; i < kQ8BlockSize; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const uint16_t d16 = f32_to_f16(d);
    std::memcpy(out, &d16, 2);
    int8_t* q = reinterpret_cast<int8_t*>(out + 2);
    for (int64_t i = 0; i < kQ8BlockSize; ++i) q[i] = static_cast<int8_t>(std::lround(x[i] * id));
  }
}

}  // namespace pcm
