// Q8_0 quantisation (GGUF's block format): each block of 32 values is one fp16 scale d = max|x| / 127
// followed by 32 int8 values q = round(x / d), so x ≈ d · q. Used for `--weights q8_0` and GGUF files.
#pragma once
#include <cstdint>

namespace pcm {

// x: n floats (n a multiple of 32) -> n / 32 blocks of 34 bytes at `out`.
void quantize_row_q8_0(const float* x, uint8_t* out, int64_t n);

}  // namespace pcm
