// GGUF (llama.cpp's model file): a memory-mapped reader that validates the whole header before any
// tensor is used — magic and version, every length and count against the bytes left, key/value types,
// tensor dims, ggml types, alignment, and data ranges inside the file and not overlapping.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tensor/dtype.h"
#include "util/file.h"

namespace pcm {

struct GgufTensor {
  std::string name;
  DType dtype = DType::F32;         // F32, F16, BF16 or Q8_0 (other ggml types are an error)
  std::vector<int64_t> shape;       // row-major, outermost first (GGUF's ne reversed)
  const uint8_t* data = nullptr;    // into the file's memory map
  size_t nbytes = 0;

  int64_t numel() const;
  std::string shape_str() const;
};

bool is_gguf_path(const std::string& path);  // a regular file named *.gguf

class GgufFile {
 public:
  explicit GgufFile(const std::string& path);

  uint32_t version() const { return version_; }
  // Metadata as JSON (numbers, bools, strings, arrays); errors name the file and key.
  const nlohmann::json& metadata() const { return metadata_; }
  bool has(const std::string& key) const { return metadata_.contains(key); }
  int64_t get_int(const std::string& key) const;
  int64_t get_int_or(const std::string& key, int64_t fallback) const;
  double get_float(const std::string& key) const;
  std::string get_string(const std::string& key) const;

  const std::map<std::string, GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* find(const std::string& name) const;
  const GgufTensor& get(const std::string& name) const;  // error naming file and tensor
  const std::string& path() const { return map_.path(); }

 private:
  MappedFile map_;
  uint32_t version_ = 0;
  nlohmann::json metadata_ = nlohmann::json::object();
  std::map<std::string, GgufTensor> tensors_;
};

}  // namespace pcm
