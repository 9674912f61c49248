#include "io/checkpoint.h"

#include <set>

#include "util/error.h"
#include "util/json.h"

namespace pcm {

CheckpointFiles::CheckpointFiles(const std::string& model_dir) : dir_(model_dir) {
  std::string single = model_dir + "/model.safetensors";
  std::string index_path = model_dir + "/model.safetensors.index.json";
  std::map<std::string, std::string> expected_shard;  // tensor -> shard file, from the index
  if (file_exists(single)) {
    shards_.push_back(std::make_unique<SafetensorsFile>(single));
  } else if (file_exists(index_path)) {
    json index = read_json_file(index_path);
    PCM_CHECK(index.is_object() && index.contains("weight_map") && index["weight_map"].is_object(),
              "{}: missing weight_map", index_path);
    std::set<std::string> files;
    for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
      PCM_CHECK(it->is_string(), "{}: weight_map['{}'] is not a file name", index_path, it.key());
      std::string f = it->get<std::string>();
      PCM_CHECK(f.find('/') == std::string::npos, "{}: weight_map['{}'] = '{}' is not a plain file name",
                index_path, it.key(), f);
      files.insert(f);
      expected_shard[it.key()] = model_dir + "/" + f;
    }
    PCM_CHECK(!files.empty(), "{}: weight_map is empty", index_path);
    for (const auto& f : files) {
      std::string p = model_dir + "/" + f;
      PCM_CHECK(file_exists(p), "{}: shard '{}' listed in the index does not exist", index_path, f);
      shards_.push_back(std::make_unique<SafetensorsFile>(p));
    }
  } else {
    fail("{}: no model.safetensors or model.safetensors.index.json", model_dir);
  }
  for (const auto& shard : shards_) {
    for (const auto& [name, info] : shard->tensors()) {
      PCM_CHECK(!index_.count(name), "{}: tensor '{}' appears in two shards ({} and {})", model_dir, name,
                index_[name]->file, shard->path());
      index_[name] = &info;
    }
  }
  for (const auto& [name, file] : expected_shard) {
    auto it = index_.find(name);
    PCM_CHECK(it != index_.end(), "{}: tensor '{}' is listed in the index but missing from {}", model_dir, name, file);
    PCM_CHECK(it->second->file == file, "{}: tensor '{}' is in {} but the index says {}", model_dir, name,
              it->second->file, file);
  }
}

const TensorInfo* CheckpointFiles::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second;
}

const TensorInfo& CheckpointFiles::get(const std::string& name) const {
  const TensorInfo* t = find(name);
  PCM_CHECK(t, "{}: missing tensor '{}'", dir_, name);
  return *t;
}

std::vector<std::string> CheckpointFiles::names() const {
  std::vector<std::string> out;
  for (const auto& [name, _] : index_) out.push_back(name);
  return out;
}

size_t CheckpointFiles::total_bytes() const {
  size_t n = 0;
  for (const auto& [_, t] : index_) n += t->nbytes;
  return n;
}

}  // namespace pcm
