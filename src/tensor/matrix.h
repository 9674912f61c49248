// MatrixRef: a read-only row-major [rows, cols] matrix in any float dtype, owned elsewhere
// (a checkpoint's memory map, or a buffer kept alive by the model).
#pragma once
#include <cstdint>

#include "tensor/dtype.h"
#include "util/error.h"

namespace pcm {

struct MatrixRef {
  const void* data = nullptr;
  DType dtype = DType::F32;
  int64_t rows = 0;
  int64_t cols = 0;

  size_t bytes() const { return static_cast<size_t>(rows) * row_bytes(dtype, cols); }
  const uint8_t* row_ptr(int64_t r) const {
    return static_cast<const uint8_t*>(data) + static_cast<size_t>(r) * row_bytes(dtype, cols);
  }
  // Rows [r0, r0 + n) as a matrix of their own (rows are independent in every dtype, Q8_0 included).
  MatrixRef rows_view(int64_t r0, int64_t n) const {
    PCM_CHECK(r0 >= 0 && n >= 0 && r0 + n <= rows, "rows_view: rows [{}, {}) outside a matrix of {} rows", r0,
              r0 + n, rows);
    return {row_ptr(r0), dtype, n, cols};
  }
  // Converts row r to float32.
  void row_to_f32(int64_t r, float* out) const { convert_to_f32(row_ptr(r), dtype, out, static_cast<size_t>(cols)); }
};

}  // namespace pcm
