// Mamba2Config: the architecture numbers, read from HF (Mamba2ForCausalLM) or mamba_ssm
// (MambaLMHeadModel) config.json with each library's defaults for missing keys.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "util/json.h"

namespace pcm {

enum class CheckpointFormat { HuggingFace, MambaSsm };

struct Mamba2Config {
  int64_t vocab_size = 32768;  // rows of the embedding (mamba_ssm: padded to pad_vocab_size_multiple)
  int64_t hidden_size = 4096;  // d
  int64_t num_layers = 64;
  int64_t num_heads = 128;  // H
  int64_t head_dim = 64;    // P
  int64_t n_groups = 8;     // G
  int64_t state_size = 128;  // N
  int64_t conv_kernel = 4;   // K
  int64_t chunk_size = 256;  // Q
  int64_t expand = 2;
  double norm_eps = 1e-5;
  bool use_bias = false;
  bool use_conv_bias = true;
  bool residual_in_fp32 = true;
  bool tie_embeddings = false;
  double dt_min = 0.0;  // time_step_limit
  double dt_max = 1.0 / 0.0;
  int64_t bos_token_id = -1, eos_token_id = -1, pad_token_id = -1;
  CheckpointFormat format = CheckpointFormat::HuggingFace;

  int64_t d_inner() const { return num_heads * head_dim; }
  int64_t conv_dim() const { return d_inner() + 2 * n_groups * state_size; }
  int64_t d_in_proj() const { return 2 * d_inner() + 2 * n_groups * state_size + num_heads; }
  int64_t heads_per_group() const { return num_heads / n_groups; }
  // Fixed per-sequence state, in elements: conv windows plus SSM states over all layers.
  int64_t conv_state_elems() const { return num_layers * conv_dim() * conv_kernel; }
  int64_t ssm_state_elems() const { return num_layers * num_heads * head_dim * state_size; }
  // Bytes of one sequence's state as stored: fp32 conv windows, the SSM state in fp32 or bf16.
  size_t conv_state_bytes() const { return static_cast<size_t>(conv_state_elems()) * 4; }
  size_t ssm_state_bytes(bool bf16_ssm) const { return static_cast<size_t>(ssm_state_elems()) * (bf16_ssm ? 2 : 4); }
  size_t state_bytes(bool bf16_ssm) const { return ssm_state_bytes(bf16_ssm) + conv_state_bytes(); }
  int64_t parameter_count() const;

  // Throws a pcm::Error naming `origin` and the field when the numbers are inconsistent.
  void validate(const std::string& origin) const;
  json to_hf_json() const;  // config.json as transformers writes it for Mamba2ForCausalLM
};

Mamba2Config parse_mamba2_config(const json& j, const std::string& origin);
// Whether parse_mamba2_config reads `key` from a Mamba2ForCausalLM config.json (a train config's [model]
// takes only these: any other key there is a typo).
bool is_hf_config_key(std::string_view key);
Mamba2Config load_mamba2_config(const std::string& model_dir);

// Published shapes for benchmarks: "codestral-7b", "mamba2-130m", "mamba2-370m", "mamba2-780m",
// "mamba2-1.3b", "mamba2-2.7b". Throws for an unknown name.
Mamba2Config named_shape(const std::string& name);
// The same with `layers` layers when layers > 0 (the commands' --layers: a few layers of a 7B shape).
Mamba2Config named_shape(const std::string& name, int64_t layers);

}  // namespace pcm
