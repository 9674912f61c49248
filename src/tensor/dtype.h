// Element types of checkpoint tensors and their conversion to float32.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace pcm {

// Q8_0 is a block type (GGUF's): blocks of 32 int8 values with one fp16 scale, 34 bytes a block.
enum class DType { F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL, Q8_0 };

constexpr int64_t kQ8BlockSize = 32;
constexpr size_t kQ8BlockBytes = 34;

size_t dtype_size(DType t);  // bytes per element; an error for block types (use row_bytes)
// Bytes of `cols` consecutive elements (a matrix row); for Q8_0 cols must be a multiple of 32.
size_t row_bytes(DType t, int64_t cols);
const char* dtype_name(DType t);  // safetensors spelling: "F32", "BF16", ...
// Parses a safetensors dtype string; returns false for an unknown one.
bool parse_dtype(const std::string& s, DType* out);

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round to nearest even, as PyTorch does; NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// dst[i] = float(src[i]) for n elements of type `t` (F32, F16, BF16, F64, Q8_0); vectorised.
void convert_to_f32(const void* src, DType t, float* dst, size_t n);

}  // namespace pcm
