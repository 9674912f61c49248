// safetensors: a memory-mapped reader that validates the whole header before any tensor is used,
// and an atomic writer.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tensor/dtype.h"
#include "util/file.h"

namespace pcm {

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // into the file's memory map
  size_t nbytes = 0;
  std::string file;  // for error messages

  int64_t numel() const;
  std::string shape_str() const;  // "[4, 1, 8]"
};

class SafetensorsFile {
 public:
  // Maps and validates `path`: header length within the file, well-formed JSON, known dtypes,
  // shape x dtype size == byte range, ranges inside the data section and not overlapping.
  explicit SafetensorsFile(const std::string& path);

  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const TensorInfo* find(const std::string& name) const;
  // The tensor, or an error naming the file and the tensor.
  const TensorInfo& get(const std::string& name) const;
  const std::string& path() const { return map_.path(); }

 private:
  MappedFile map_;
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// One tensor to write: raw little-endian bytes of `dtype` elements.
struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;
};

// Writes a safetensors file atomically (temp + rename); tensors are stored in the given order.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Copies a tensor's elements to float32 (any float dtype), checking the element count.
std::vector<float> tensor_to_f32(const TensorInfo& t);

}  // namespace pcm
