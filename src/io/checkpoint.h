// A checkpoint directory's tensors: model.safetensors, or shards listed in model.safetensors.index.json.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace pcm {

class CheckpointFiles {
 public:
  // Opens every shard and validates its header. The index's weight_map must name shards that exist,
  // and every tensor it lists must be in the shard it names.
  explicit CheckpointFiles(const std::string& model_dir);

  const TensorInfo* find(const std::string& name) const;
  const TensorInfo& get(const std::string& name) const;  // error names the directory and the tensor
  const std::string& dir() const { return dir_; }
  std::vector<std::string> names() const;
  size_t total_bytes() const;

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::map<std::string, const TensorInfo*> index_;
};

}  // namespace pcm
