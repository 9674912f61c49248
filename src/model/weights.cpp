#include "model/weights.h"

#include <cmath>
#include <random>

#include "util/error.h"

namespace pcm {

namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

class Binder {
 public:
  Binder(const Mamba2Config& c, const CheckpointFiles& f) : config_(c), files_(f) {}

  const TensorInfo& tensor(const std::string& name, const std::vector<int64_t>& shape) {
    const TensorInfo& t = files_.get(name);
    PCM_CHECK(t.dtype == DType::F32 || t.dtype == DType::BF16 || t.dtype == DType::F16 || t.dtype == DType::F64,
              "{}: tensor '{}' has dtype {}; expected F32, BF16 or F16", t.file, name, dtype_name(t.dtype));
    PCM_CHECK(t.shape == shape, "{}: tensor '{}' has shape {} but the config ({}/config.json) needs {}", t.file, name,
              t.shape_str(), files_.dir(), shape_str(shape));
    return t;
  }

  MatrixRef matrix(const std::string& name, int64_t rows, int64_t cols) {
    const TensorInfo& t = tensor(name, {rows, cols});
    PCM_CHECK(t.dtype != DType::F64, "{}: tensor '{}': F64 matrices are not supported", t.file, name);
    return MatrixRef{t.data, t.dtype, rows, cols};
  }

  std::vector<float> vec(const std::string& name, const std::vector<int64_t>& shape) {
    return tensor_to_f32(tensor(name, shape));
  }

  // conv1d.weight is [C, 1, K] in both libraries; accept the squeezed [C, K] too.
  std::vector<float> conv_weight(const std::string& name, int64_t channels, int64_t k) {
    const TensorInfo& t = files_.get(name);
    if (t.shape.size() == 2) return vec(name, {channels, k});
    return vec(name, {channels, 1, k});
  }

 private:
  const Mamba2Config& config_;
  const CheckpointFiles& files_;
};

}  // namespace

size_t Mamba2Weights::matrix_bytes() const {
  size_t n = embedding.bytes();
  for (const auto& l : layers) n += l.in_proj.bytes() + l.out_proj.bytes();
  if (lm_head.data != embedding.data) n += lm_head.bytes();
  return n;
}

Mamba2Weights bind_mamba2_weights(const Mamba2Config& c, std::shared_ptr<const CheckpointFiles> files) {
  Binder b(c, *files);
  Mamba2Weights w;
  w.owners.push_back(files);
  const int64_t d = c.hidden_size, di = c.d_inner(), H = c.num_heads;
  std::string embed_name = c.format == CheckpointFormat::MambaSsm ? "backbone.embedding.weight"
                                                                   : "backbone.embeddings.weight";
  if (!files->find(embed_name)) {  // tolerate the other library's spelling
    std::string other = c.format == CheckpointFormat::MambaSsm ? "backbone.embeddings.weight"
                                                                : "backbone.embedding.weight";
    if (files->find(other)) embed_name = other;
  }
  w.embedding = b.matrix(embed_name, c.vocab_size, d);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    std::string p = "backbone.layers." + std::to_string(i) + ".";
    LayerWeights l;
    l.norm = b.vec(p + "norm.weight", {d});
    l.in_proj = b.matrix(p + "mixer.in_proj.weight", c.d_in_proj(), d);
    if (c.use_bias) l.in_proj_bias = b.vec(p + "mixer.in_proj.bias", {c.d_in_proj()});
    l.conv_weight = b.conv_weight(p + "mixer.conv1d.weight", c.conv_dim(), c.conv_kernel);
    l.conv_bias = c.use_conv_bias ? b.vec(p + "mixer.conv1d.bias", {c.conv_dim()})
                                  : std::vector<float>(static_cast<size_t>(c.conv_dim()), 0.0f);
    l.dt_bias = b.vec(p + "mixer.dt_bias", {H});
    l.A = b.vec(p + "mixer.A_log", {H});
    for (float& a : l.A) a = -std::exp(a);
    l.D = b.vec(p + "mixer.D", {H});
    l.gate_norm = b.vec(p + "mixer.norm.weight", {di});
    l.out_proj = b.matrix(p + "mixer.out_proj.weight", d, di);
    if (c.use_bias) l.out_proj_bias = b.vec(p + "mixer.out_proj.bias", {d});
    w.layers.push_back(std::move(l));
  }
  w.norm_f = b.vec("backbone.norm_f.weight", {d});
  if (c.tie_embeddings) {
    w.lm_head = w.embedding;
  } else {
    w.lm_head = b.matrix("lm_head.weight", c.vocab_size, d);
  }
  return w;
}

Mamba2Weights random_mamba2_weights(const Mamba2Config& c, DType dtype, uint64_t seed) {
  PCM_CHECK(dtype == DType::F32 || dtype == DType::BF16, "random weights: dtype must be F32 or BF16");
  Mamba2Weights w;
  std::mt19937_64 rng(seed);
  // Uniform with the std of N(0, std): fast to draw for billions of elements.
  auto make_matrix = [&](int64_t rows, int64_t cols, float stddev) {
    size_t n = static_cast<size_t>(rows * cols);
    std::shared_ptr<uint8_t[]> buf(new uint8_t[n * dtype_size(dtype)]);
    uint64_t base = rng();
    float scale = stddev * std::sqrt(3.0f) / 2147483648.0f;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      uint64_t s = base ^ (0x9E3779B97F4A7C15ull * static_cast<uint64_t>(r + 1));
      for (int64_t k = 0; k < cols; ++k) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        float v = static_cast<float>(static_cast<int32_t>(s >> 32)) * scale;
        size_t idx = static_cast<size_t>(r * cols + k);
        if (dtype == DType::BF16) reinterpret_cast<uint16_t*>(buf.get())[idx] = f32_to_bf16(v);
        else reinterpret_cast<float*>(buf.get())[idx] = v;
      }
    }
    w.owners.push_back(buf);
    return MatrixRef{buf.get(), dtype, rows, cols};
  };
  std::uniform_real_distribution<float> uni(0.0f, 1.0f);
  auto vec = [&](int64_t n, float lo, float hi) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = lo + (hi - lo) * uni(rng);
    return v;
  };
  const int64_t d = c.hidden_size, H = c.num_heads;
  w.embedding = make_matrix(c.vocab_size, d, 0.02f);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    LayerWeights l;
    l.norm = vec(d, 0.9f, 1.1f);
    l.in_proj = make_matrix(c.d_in_proj(), d, 0.02f);
    if (c.use_bias) l.in_proj_bias = vec(c.d_in_proj(), -0.01f, 0.01f);
    l.conv_weight = vec(c.conv_dim() * c.conv_kernel, -0.5f, 0.5f);
    l.conv_bias = vec(c.conv_dim(), -0.5f, 0.5f);
    l.dt_bias.resize(static_cast<size_t>(H));
    for (float& b : l.dt_bias) {
      float dt = std::exp(std::log(1e-3f) + uni(rng) * (std::log(1e-1f) - std::log(1e-3f)));
      b = dt + std::log(-std::expm1(-dt));  // inverse softplus
    }
    l.A = vec(H, -16.0f, -1.0f);
    l.D = vec(H, 0.9f, 1.1f);
    l.gate_norm = vec(c.d_inner(), 0.9f, 1.1f);
    l.out_proj = make_matrix(d, c.d_inner(), 0.02f / std::sqrt(2.0f * static_cast<float>(c.num_layers)));
    if (c.use_bias) l.out_proj_bias = vec(d, -0.01f, 0.01f);
    w.layers.push_back(std::move(l));
  }
  w.norm_f = vec(d, 0.9f, 1.1f);
  w.lm_head = c.tie_embeddings ? w.embedding : make_matrix(c.vocab_size, d, 0.02f);
  return w;
}

}  // namespace pcm
