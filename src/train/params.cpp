#include "train/params.h"

#include <cmath>
#include <filesystem>

#include "io/checkpoint.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "model/weights.h"
#include "util/error.h"
#include "util/file.h"

namespace pcm {

namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

int64_t numel_of(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (int64_t v : s) n *= v;
  return n;
}

}  // namespace

ParamSet ParamSet::zeros(const Mamba2Config& c) {
  ParamSet p;
  auto add = [&](std::string name, std::vector<int64_t> shape, bool decay) {
    ParamTensor t{std::move(name), shape, std::vector<float>(static_cast<size_t>(numel_of(shape)), 0.0f), decay};
    p.add(std::move(t));
  };
  const int64_t d = c.hidden_size, H = c.num_heads;
  add("backbone.embeddings.weight", {c.vocab_size, d}, true);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string l = "backbone.layers." + std::to_string(i) + ".";
    add(l + "norm.weight", {d}, false);
    add(l + "mixer.in_proj.weight", {c.d_in_proj(), d}, true);
    if (c.use_bias) add(l + "mixer.in_proj.bias", {c.d_in_proj()}, false);
    add(l + "mixer.conv1d.weight", {c.conv_dim(), 1, c.conv_kernel}, true);
    if (c.use_conv_bias) add(l + "mixer.conv1d.bias", {c.conv_dim()}, false);
    add(l + "mixer.dt_bias", {H}, false);
    add(l + "mixer.A_log", {H}, false);
    add(l + "mixer.D", {H}, false);
    add(l + "mixer.norm.weight", {c.d_inner()}, false);
    add(l + "mixer.out_proj.weight", {d, c.d_inner()}, true);
    if (c.use_bias) add(l + "mixer.out_proj.bias", {d}, false);
  }
  add("backbone.norm_f.weight", {d}, false);
  if (!c.tie_embeddings) add("lm_head.weight", {c.vocab_size, d}, true);
  return p;
}

ParamSet ParamSet::from_model_dir(const std::string& model_dir, Mamba2Config* config_out) {
  const Mamba2Config config = load_mamba2_config(model_dir);
  if (config_out) *config_out = config;
  CheckpointFiles files(model_dir);
  ParamSet p = zeros(config);
  for (ParamTensor& t : p.tensors_) {
    std::string file_name = t.name;
    if (t.name == "backbone.embeddings.weight" && !files.find(file_name) && files.find("backbone.embedding.weight"))
      file_name = "backbone.embedding.weight";  // mamba_ssm spelling
    const TensorInfo& info = files.get(file_name);
    bool shape_ok = info.shape == t.shape;
    // conv1d.weight may be stored squeezed as [C, K].
    if (!shape_ok && t.shape.size() == 3 && t.shape[1] == 1)
      shape_ok = info.shape == std::vector<int64_t>{t.shape[0], t.shape[2]};
    PCM_CHECK(shape_ok, "{}: tensor '{}' has shape {} but the config ({}/config.json) needs {}", info.file, file_name,
              info.shape_str(), model_dir, shape_str(t.shape));
    t.data = tensor_to_f32(info);
  }
  return p;
}

ParamSet ParamSet::random(const Mamba2Config& c, uint64_t seed) {
  return from_weights(c, random_mamba2_weights(c, DType::F32, seed));
}

ParamSet ParamSet::from_model_path(const std::string& path, Mamba2Config* config) {
  if (!is_gguf_path(path)) return from_model_dir(path, config);
  const Mamba2Model model = Mamba2Model::load(path);  // GGUF metadata and tensors, as pcm score reads them
  *config = model.config();
  return from_weights(model.config(), model.weights());
}

ParamSet ParamSet::from_weights(const Mamba2Config& c, const Mamba2Weights& w) {
  ParamSet p = zeros(c);
  auto copy_matrix = [](const MatrixRef& m, std::vector<float>& out) {
    for (int64_t r = 0; r < m.rows; ++r) m.row_to_f32(r, out.data() + r * m.cols);
  };
  copy_matrix(w.embedding, p.get("backbone.embeddings.weight").data);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const LayerWeights& l = w.layers[static_cast<size_t>(i)];
    const std::string n = "backbone.layers." + std::to_string(i) + ".";
    p.get(n + "norm.weight").data = l.norm;
    copy_matrix(l.in_proj, p.get(n + "mixer.in_proj.weight").data);
    if (c.use_bias) p.get(n + "mixer.in_proj.bias").data = l.in_proj_bias;
    p.get(n + "mixer.conv1d.weight").data = l.conv_weight;
    if (c.use_conv_bias) p.get(n + "mixer.conv1d.bias").data = l.conv_bias;
    p.get(n + "mixer.dt_bias").data = l.dt_bias;
    auto& a_log = p.get(n + "mixer.A_log").data;
    for (size_t h = 0; h < a_log.size(); ++h) a_log[h] = std::log(-l.A[h]);
    p.get(n + "mixer.D").data = l.D;
    p.get(n + "mixer.norm.weight").data = l.gate_norm;
    copy_matrix(l.out_proj, p.get(n + "mixer.out_proj.weight").data);
    if (c.use_bias) p.get(n + "mixer.out_proj.bias").data = l.out_proj_bias;
  }
  p.get("backbone.norm_f.weight").data = w.norm_f;
  if (!c.tie_embeddings) copy_matrix(w.lm_head, p.get("lm_head.weight").data);
  return p;
}

ParamSet ParamSet::zeros_like() const {
  ParamSet p;
  for (const ParamTensor& t : tensors_)
    p.add(ParamTensor{t.name, t.shape, std::vector<float>(t.data.size(), 0.0f), t.weight_decay});
  return p;
}

void ParamSet::set_zero() {
  for (ParamTensor& t : tensors_) std::fill(t.data.begin(), t.data.end(), 0.0f);
}

void ParamSet::add(ParamTensor t) {
  PCM_CHECK(!index_.count(t.name), "parameter '{}' added twice", t.name);
  PCM_CHECK(numel_of(t.shape) == t.numel(), "parameter '{}': {} elements for shape {}", t.name, t.numel(),
            shape_str(t.shape));
  index_[t.name] = tensors_.size();
  tensors_.push_back(std::move(t));
}

int64_t ParamSet::index_of(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? -1 : static_cast<int64_t>(it->second);
}

const ParamTensor* ParamSet::find(const std::string& name) const {
  int64_t i = index_of(name);
  return i < 0 ? nullptr : &tensors_[static_cast<size_t>(i)];
}

ParamTensor* ParamSet::find(const std::string& name) {
  int64_t i = index_of(name);
  return i < 0 ? nullptr : &tensors_[static_cast<size_t>(i)];
}

const ParamTensor& ParamSet::get(const std::string& name) const {
  const ParamTensor* t = find(name);
  PCM_CHECK(t, "parameter '{}' is not in the parameter set", name);
  return *t;
}

ParamTensor& ParamSet::get(const std::string& name) {
  ParamTensor* t = find(name);
  PCM_CHECK(t, "parameter '{}' is not in the parameter set", name);
  return *t;
}

int64_t ParamSet::total_numel() const {
  int64_t n = 0;
  for (const ParamTensor& t : tensors_) n += t.numel();
  return n;
}

void ParamSet::save_hf(const std::string& dir, const Mamba2Config& config, DType out_dtype) const {
  PCM_CHECK(out_dtype == DType::F32 || out_dtype == DType::BF16 || out_dtype == DType::F16,
            "save_hf: output dtype must be F32, BF16 or F16, got {}", dtype_name(out_dtype));
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  PCM_CHECK(!ec, "{}: cannot create the directory: {}", dir, ec.message());
  // Converted copies for 16-bit outputs; F32 writes straight from the tensors.
  std::vector<std::vector<uint16_t>> half(tensors_.size());
  std::vector<TensorToWrite> out;
  out.reserve(tensors_.size());
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const ParamTensor& t = tensors_[i];
    const void* data = t.data.data();
    if (out_dtype != DType::F32) {
      half[i].resize(t.data.size());
      for (size_t k = 0; k < t.data.size(); ++k)
        half[i][k] = out_dtype == DType::BF16 ? f32_to_bf16(t.data[k]) : f32_to_f16(t.data[k]);
      data = half[i].data();
    }
    out.push_back(TensorToWrite{t.name, out_dtype, t.shape, data});
  }
  write_safetensors(dir + "/model.safetensors", out, {{"format", "pt"}});
  write_file_atomic(dir + "/config.json", config.to_hf_json().dump(2) + "\n");
}

}  // namespace pcm
