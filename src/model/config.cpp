#include "model/config.h"

#include <algorithm>
#include <cmath>
#include <iterator>

#include "io/gguf.h"
#include "util/error.h"
#include "util/file.h"

namespace pcm {

namespace {

void read_time_step_limit(const json& j, const std::string& key, Mamba2Config& c, const std::string& origin) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;  // no clamp
  PCM_CHECK(it->is_array() && it->size() == 2, "{}: {} must be a pair [min, max], got {}", origin, key,
            it->dump());
  c.dt_min = json_to_double((*it)[0], origin + ": " + key + "[0]");
  c.dt_max = json_to_double((*it)[1], origin + ": " + key + "[1]");
}

// An id or a list of ids (the first is used). A wrong type names the field (get<int64_t>() said only "type must be
// number").
int64_t eos_id(const json& j) {
  auto it = j.find("eos_token_id");
  if (it == j.end() || !it->is_array()) return json_int_or(j, "eos_token_id", -1);
  if (it->empty()) return -1;
  const json& first = (*it)[0];
  if (!first.is_number_integer())
    throw JsonFieldError(fmt::format("eos_token_id[0]: expected an integer, got {}", first.dump()));
  return first.get<int64_t>();
}

constexpr std::string_view kHfKeys[] = {
    "vocab_size",         "hidden_size",   "num_hidden_layers", "num_heads",        "head_dim",
    "n_groups",           "state_size",    "conv_kernel",       "chunk_size",       "expand",
    "layer_norm_epsilon", "use_bias",      "use_conv_bias",     "residual_in_fp32", "tie_word_embeddings",
    "time_step_limit",    "bos_token_id",  "eos_token_id",      "pad_token_id"};

// Reads the keys of kHfKeys (Config.HfConfigKeysAreTheKeysTheParserReads checks that the two stay one list).
Mamba2Config parse_hf(const json& j, const std::string& origin) {
  Mamba2Config c;  // transformers' Mamba2Config defaults
  c.format = CheckpointFormat::HuggingFace;
  c.vocab_size = json_int_or(j, "vocab_size", 32768);
  c.hidden_size = json_int_or(j, "hidden_size", 4096);
  c.num_layers = json_int_or(j, "num_hidden_layers", 64);
  c.num_heads = json_int_or(j, "num_heads", 128);
  c.head_dim = json_int_or(j, "head_dim", 64);
  c.n_groups = json_int_or(j, "n_groups", 8);
  c.state_size = json_int_or(j, "state_size", 128);
  c.conv_kernel = json_int_or(j, "conv_kernel", 4);
  c.chunk_size = json_int_or(j, "chunk_size", 256);
  c.expand = json_int_or(j, "expand", 2);
  c.norm_eps = json_double_or(j, "layer_norm_epsilon", 1e-5);
  c.use_bias = json_bool_or(j, "use_bias", false);
  c.use_conv_bias = json_bool_or(j, "use_conv_bias", true);
  c.residual_in_fp32 = json_bool_or(j, "residual_in_fp32", true);
  c.tie_embeddings = json_bool_or(j, "tie_word_embeddings", false);
  read_time_step_limit(j, "time_step_limit", c, origin);
  c.bos_token_id = json_int_or(j, "bos_token_id", -1);
  c.eos_token_id = eos_id(j);
  c.pad_token_id = json_int_or(j, "pad_token_id", -1);
  return c;
}

Mamba2Config parse_mamba_ssm(const json& j, const std::string& origin) {
  Mamba2Config c;  // mamba_ssm MambaConfig + Mamba2 layer defaults
  c.format = CheckpointFormat::MambaSsm;
  const json ssm = j.contains("ssm_cfg") && j["ssm_cfg"].is_object() ? j["ssm_cfg"] : json::object();
  std::string layer = json_string_or(ssm, "layer", "Mamba1");
  PCM_CHECK(layer == "Mamba2", "{}: ssm_cfg.layer is '{}'; only Mamba2 layers are supported", origin, layer);
  PCM_CHECK(json_int_or(j, "d_intermediate", 0) == 0,
            "{}: d_intermediate > 0 (MLP blocks between mixers) is not supported", origin);
  if (j.contains("attn_layer_idx") && j["attn_layer_idx"].is_array())
    PCM_CHECK(j["attn_layer_idx"].empty(), "{}: attn_layer_idx is not empty; hybrid attention models are not supported",
              origin);
  PCM_CHECK(!json_bool_or(ssm, "norm_before_gate", false), "{}: ssm_cfg.norm_before_gate=true is not supported",
            origin);
  PCM_CHECK(json_bool_or(j, "rms_norm", true), "{}: rms_norm=false (LayerNorm) is not supported", origin);
  PCM_CHECK(j.contains("d_model") && j.contains("n_layer"), "{}: missing d_model or n_layer", origin);
  c.hidden_size = json_int_or(j, "d_model", 2560);
  c.num_layers = json_int_or(j, "n_layer", 64);
  int64_t vocab = json_int_or(j, "vocab_size", 50277);
  int64_t multiple = json_int_or(j, "pad_vocab_size_multiple", 8);
  PCM_CHECK(multiple >= 1, "{}: pad_vocab_size_multiple must be >= 1", origin);
  c.vocab_size = (vocab + multiple - 1) / multiple * multiple;
  c.state_size = json_int_or(ssm, "d_state", 128);
  c.conv_kernel = json_int_or(ssm, "d_conv", 4);
  c.expand = json_int_or(ssm, "expand", 2);
  c.head_dim = json_int_or(ssm, "headdim", 64);
  c.n_groups = json_int_or(ssm, "ngroups", 1);
  c.chunk_size = json_int_or(ssm, "chunk_size", 256);
  c.use_bias = json_bool_or(ssm, "bias", false);
  c.use_conv_bias = json_bool_or(ssm, "conv_bias", true);
  int64_t d_ssm = json_int_or(ssm, "d_ssm", c.expand * c.hidden_size);
  PCM_CHECK(d_ssm == c.expand * c.hidden_size, "{}: ssm_cfg.d_ssm != expand * d_model is not supported", origin);
  PCM_CHECK(c.head_dim > 0 && d_ssm % c.head_dim == 0, "{}: d_inner {} is not a multiple of headdim {}", origin,
            d_ssm, c.head_dim);
  c.num_heads = d_ssm / c.head_dim;
  read_time_step_limit(ssm, "dt_limit", c, origin + " ssm_cfg");
  c.norm_eps = json_double_or(j, "norm_epsilon", 1e-5);
  c.residual_in_fp32 = json_bool_or(j, "residual_in_fp32", true);
  c.tie_embeddings = json_bool_or(j, "tie_embeddings", true);
  c.bos_token_id = json_int_or(j, "bos_token_id", -1);
  c.eos_token_id = eos_id(j);
  c.pad_token_id = json_int_or(j, "pad_token_id", -1);
  return c;
}

}  // namespace

int64_t Mamba2Config::parameter_count() const {
  int64_t per_layer = hidden_size                      // norm
                      + d_in_proj() * hidden_size       // in_proj
                      + (use_bias ? d_in_proj() : 0)    //
                      + conv_dim() * conv_kernel        // conv1d
                      + (use_conv_bias ? conv_dim() : 0)  //
                      + 3 * num_heads                   // dt_bias, A_log, D
                      + d_inner()                       // gated norm
                      + hidden_size * d_inner()         // out_proj
                      + (use_bias ? hidden_size : 0);
  return vocab_size * hidden_size * (tie_embeddings ? 1 : 2) + num_layers * per_layer + hidden_size;
}

void Mamba2Config::validate(const std::string& origin) const {
  // Upper bounds far above any real checkpoint (Codestral-7B: 32768, 4096, 64, 128, 64, 8, 128, 4, 256): an
  // absurd size is an error naming the field, not gigabytes allocated, a bad_alloc or an overflowed product.
  auto in_range = [&](const char* name, int64_t v, int64_t max) {
    PCM_CHECK(v > 0, "{}: {} must be > 0, got {}", origin, name, v);
    PCM_CHECK(v <= max, "{}: {} must be <= {}, got {}", origin, name, max, v);
  };
  in_range("vocab_size", vocab_size, int64_t{1} << 24);
  in_range("hidden_size", hidden_size, int64_t{1} << 16);
  in_range("num_hidden_layers", num_layers, 4096);
  in_range("num_heads", num_heads, int64_t{1} << 16);
  in_range("head_dim", head_dim, 4096);
  in_range("n_groups", n_groups, int64_t{1} << 16);
  in_range("state_size", state_size, 4096);
  in_range("conv_kernel", conv_kernel, 16);
  in_range("chunk_size", chunk_size, int64_t{1} << 16);
  PCM_CHECK(d_inner() <= (int64_t{1} << 20), "{}: num_heads ({}) x head_dim ({}) must be <= {}", origin, num_heads,
            head_dim, int64_t{1} << 20);
  // Divide rather than multiply: expand is not bounded.
  PCM_CHECK(d_inner() % hidden_size == 0 && d_inner() / hidden_size == expand,
            "{}: num_heads ({}) x head_dim ({}) must equal expand ({}) x hidden_size ({})", origin, num_heads, head_dim,
            expand, hidden_size);
  PCM_CHECK(num_heads % n_groups == 0, "{}: num_heads ({}) must be a multiple of n_groups ({})", origin, num_heads,
            n_groups);
  PCM_CHECK(d_inner() % n_groups == 0, "{}: d_inner ({}) must be a multiple of n_groups ({})", origin, d_inner(),
            n_groups);
  PCM_CHECK(norm_eps > 0, "{}: layer_norm_epsilon must be > 0", origin);
  PCM_CHECK(!(dt_min > dt_max), "{}: time_step_limit min {} > max {}", origin, dt_min, dt_max);
}

json Mamba2Config::to_hf_json() const {
  json j = {{"architectures", {"Mamba2ForCausalLM"}},
            {"model_type", "mamba2"},
            {"vocab_size", vocab_size},
            {"hidden_size", hidden_size},
            {"num_hidden_layers", num_layers},
            {"num_heads", num_heads},
            {"head_dim", head_dim},
            {"n_groups", n_groups},
            {"state_size", state_size},
            {"conv_kernel", conv_kernel},
            {"chunk_size", chunk_size},
            {"expand", expand},
            {"layer_norm_epsilon", norm_eps},
            {"use_bias", use_bias},
            {"use_conv_bias", use_conv_bias},
            {"residual_in_fp32", residual_in_fp32},
            {"tie_word_embeddings", tie_embeddings},
            {"hidden_act", "silu"},
            {"rms_norm", true}};
  j["time_step_limit"] = {dt_min, std::isinf(dt_max) ? json({{"__float__", "Infinity"}}) : json(dt_max)};
  if (bos_token_id >= 0) j["bos_token_id"] = bos_token_id;
  if (eos_token_id >= 0) j["eos_token_id"] = eos_token_id;
  if (pad_token_id >= 0) j["pad_token_id"] = pad_token_id;
  return j;
}

Mamba2Config parse_mamba2_config(const json& j, const std::string& origin) {
  PCM_CHECK(j.is_object(), "{}: config is not a JSON object", origin);
  Mamba2Config c;
  naming_json_errors(origin + ": bad value", [&] {
    c = (j.contains("d_model") || j.contains("ssm_cfg")) ? parse_mamba_ssm(j, origin) : parse_hf(j, origin);
  });
  c.validate(origin);
  return c;
}

bool is_hf_config_key(std::string_view key) {
  return std::find(std::begin(kHfKeys), std::end(kHfKeys), key) != std::end(kHfKeys);
}

Mamba2Config load_mamba2_config(const std::string& model_dir) {
  // Callers that load a .gguf (Mamba2Model::load, ParamSet::from_model_path) never get here; those that do (the CUDA
  // engine, pcm train) said "no config.json in the model directory" of a file.
  PCM_CHECK(!is_gguf_path(model_dir), "{}: a .gguf file; this needs a model directory (config.json + safetensors)",
            model_dir);
  std::string path = model_dir + "/config.json";
  PCM_CHECK(file_exists(path), "{}: no config.json in the model directory", model_dir);
  return parse_mamba2_config(read_json_file(path), path);
}

Mamba2Config named_shape(const std::string& name) {
  struct Shape { const char* name; int64_t d, layers, vocab, n, p, g; bool tied; };
  static const Shape shapes[] = {
      {"mamba2-130m", 768, 24, 50288, 128, 64, 1, true},    {"mamba2-370m", 1024, 48, 50288, 128, 64, 1, true},
      {"mamba2-780m", 1536, 48, 50288, 128, 64, 1, true},   {"mamba2-1.3b", 2048, 48, 50288, 128, 64, 1, true},
      {"mamba2-2.7b", 2560, 64, 50288, 128, 64, 1, true},   {"codestral-7b", 4096, 64, 32768, 128, 64, 8, false}};
  for (const auto& s : shapes) {
    if (name != s.name) continue;
    Mamba2Config c;
    c.hidden_size = s.d;
    c.num_layers = s.layers;
    c.vocab_size = s.vocab;
    c.state_size = s.n;
    c.head_dim = s.p;
    c.n_groups = s.g;
    c.expand = 2;
    c.num_heads = 2 * s.d / s.p;
    c.tie_embeddings = s.tied;
    c.chunk_size = 256;
    return c;
  }
  fail("unknown shape '{}' (known: codestral-7b, mamba2-130m, mamba2-370m, mamba2-780m, mamba2-1.3b, mamba2-2.7b)",
       name);
}

Mamba2Config named_shape(const std::string& name, int64_t layers) {
  Mamba2Config c = named_shape(name);
  if (layers > 0) c.num_layers = layers;
  return c;
}

}  // namespace pcm
