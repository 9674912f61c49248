#include "model/quantize.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "tensor/q8_0.h"
#include "util/error.h"

namespace pcm {

DType parse_weights_option(const std::string& value) {
  if (value == "file" || value.empty()) return DType::F32;  // F32 here means "as stored"
  if (value == "q8_0" || value == "Q8_0") return DType::Q8_0;
  fail("--weights: unknown value '{}' (expected file or q8_0)", value);
}

namespace {

// Asks the kernel to drop the source's resident pages (clean file pages of a memory-mapped checkpoint)
// so peak memory stays near the Q8_0 size instead of both copies. Contents are unchanged (PAGEOUT,
// not DONTNEED), so this is safe for any memory; anonymous memory without swap just stays.
void release_pages(const void* data, size_t bytes) {
#ifdef MADV_PAGEOUT
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + page - 1) / page * page;
  uintptr_t end = (reinterpret_cast<uintptr_t>(data) + bytes) / page * page;
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_PAGEOUT);
#else
  (void)data;
  (void)bytes;
#endif
}

MatrixRef quantize_matrix(const MatrixRef& m, const std::string& name, std::vector<std::shared_ptr<const void>>& owners) {
  if (m.dtype == DType::Q8_0) return m;
  PCM_CHECK(m.cols % kQ8BlockSize == 0, "--weights q8_0: {} has {} columns, not a multiple of {}", name, m.cols,
            kQ8BlockSize);
  const size_t stride = row_bytes(DType::Q8_0, m.cols);
  std::shared_ptr<uint8_t[]> buf(new uint8_t[stride * static_cast<size_t>(m.rows)]);
#pragma omp parallel
  {
    std::vector<float> row(static_cast<size_t>(m.cols));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < m.rows; ++r) {
      m.row_to_f32(r, row.data());
      quantize_row_q8_0(row.data(), buf.get() + stride * static_cast<size_t>(r), m.cols);
    }
  }
  owners.push_back(buf);
  release_pages(m.data, m.bytes());
  return MatrixRef{buf.get(), DType::Q8_0, m.rows, m.cols};
}

}  // namespace

void quantize_weights_q8_0(Mamba2Weights& w) {
  const bool tied = w.lm_head.data == w.embedding.data;
  std::vector<std::shared_ptr<const void>> old_owners;
  old_owners.swap(w.owners);
  bool all_fresh = true;  // every large matrix got a buffer of its own
  auto convert = [&](const MatrixRef& m, const std::string& name) {
    all_fresh = all_fresh && m.dtype != DType::Q8_0;
    return quantize_matrix(m, name, w.owners);
  };
  w.embedding = convert(w.embedding, "embedding");
  w.lm_head = tied ? w.embedding : convert(w.lm_head, "lm_head");
  for (size_t i = 0; i < w.layers.size(); ++i) {
    auto& l = w.layers[i];
    l.in_proj = convert(l.in_proj, "layers." + std::to_string(i) + ".in_proj");
    l.out_proj = convert(l.out_proj, "layers." + std::to_string(i) + ".out_proj");
  }
  // The small vectors are fp32 copies already, so when every matrix is new the checkpoint's mapping can
  // go: resident memory is then the Q8_0 weights alone, not both copies.
  if (!all_fresh) w.owners.insert(w.owners.end(), old_owners.begin(), old_owners.end());
}

}  // namespace pcm
