// Trainable parameters in float32, one ParamTensor per checkpoint tensor, in a fixed order that
// follows the HF Mamba2ForCausalLM names. Gradients and optimizer moments are ParamSets of the same
// layout (zeros_like), so code can walk them side by side by index.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model/config.h"
#include "tensor/dtype.h"

namespace pcm {

struct Mamba2Weights;

struct ParamTensor {
  std::string name;             // HF checkpoint name, e.g. "backbone.layers.3.mixer.in_proj.weight"
  std::vector<int64_t> shape;   // as stored in the checkpoint (conv1d.weight is [C, 1, K])
  std::vector<float> data;      // row-major, numel(shape) elements
  bool weight_decay = true;     // false for norms, biases, A_log, D, dt_bias (as mamba_ssm trains)

  int64_t numel() const { return static_cast<int64_t>(data.size()); }
};

class ParamSet {
 public:
  ParamSet() = default;

  // The parameter names and shapes a config has, in order (data zero-filled):
  //   backbone.embeddings.weight,
  //   per layer i: backbone.layers.i.norm.weight, .mixer.in_proj.weight[, .mixer.in_proj.bias],
  //     .mixer.conv1d.weight[, .mixer.conv1d.bias], .mixer.dt_bias, .mixer.A_log, .mixer.D,
  //     .mixer.norm.weight, .mixer.out_proj.weight[, .mixer.out_proj.bias],
  //   backbone.norm_f.weight, lm_head.weight (only when the head is not tied).
  static ParamSet zeros(const Mamba2Config& config);
  // Loads a checkpoint directory (HF or mamba_ssm layout, any float dtype, sharded or not) into fp32
  // under the HF names above; errors name the directory and the tensor.
  // `config` (optional): the directory's config, read once with the weights.
  static ParamSet from_model_dir(const std::string& model_dir, Mamba2Config* config = nullptr);
  // A checkpoint directory (from_model_dir) or a llama.cpp .gguf file (any tensor dtype the model loader reads,
  // Q8_0 included), with its config in *config.
  static ParamSet from_model_path(const std::string& path, Mamba2Config* config);
  // The weights of a loaded model in fp32 under the names above (A_log = log(-A)).
  static ParamSet from_weights(const Mamba2Config& config, const Mamba2Weights& weights);
  // Random initialisation of the config's shape (random_mamba2_weights' scheme, deterministic in seed).
  static ParamSet random(const Mamba2Config& config, uint64_t seed);

  ParamSet zeros_like() const;
  void set_zero();

  size_t size() const { return tensors_.size(); }
  ParamTensor& operator[](size_t i) { return tensors_[i]; }
  const ParamTensor& operator[](size_t i) const { return tensors_[i]; }
  std::vector<ParamTensor>& tensors() { return tensors_; }
  const std::vector<ParamTensor>& tensors() const { return tensors_; }

  const ParamTensor* find(const std::string& name) const;
  ParamTensor* find(const std::string& name);
  const ParamTensor& get(const std::string& name) const;  // error names the missing tensor
  ParamTensor& get(const std::string& name);
  int64_t index_of(const std::string& name) const;  // -1 when absent

  int64_t total_numel() const;

  // Writes config.json (config.to_hf_json()) and model.safetensors (tensors converted to out_dtype:
  // F32, BF16 or F16), each atomically, creating `dir` if needed. The result loads with
  // Mamba2Model::load and transformers' Mamba2ForCausalLM.from_pretrained.
  void save_hf(const std::string& dir, const Mamba2Config& config, DType out_dtype) const;

  // Appends a tensor (used by the constructors above); names must be unique.
  void add(ParamTensor t);

 private:
  std::vector<ParamTensor> tensors_;
  std::map<std::string, size_t> index_;
};

}  // namespace pcm
