#include "model/gguf_model.h"

#include <filesystem>

#include "util/error.h"

namespace pcm {

Mamba2Config mamba2_config_from_gguf(const GgufFile& f) {
  const std::string arch = f.get_string("general.architecture");
  PCM_CHECK(arch == "mamba2", "{}: general.architecture is '{}', expected 'mamba2'", f.path(), arch);
  Mamba2Config c;
  c.hidden_size = f.get_int("mamba2.embedding_length");
  c.num_layers = f.get_int("mamba2.block_count");
  c.conv_kernel = f.get_int("mamba2.ssm.conv_kernel");
  const int64_t d_inner = f.get_int("mamba2.ssm.inner_size");
  c.state_size = f.get_int("mamba2.ssm.state_size");
  c.num_heads = f.get_int("mamba2.ssm.time_step_rank");
  c.n_groups = f.get_int_or("mamba2.ssm.group_count", 1);
  c.norm_eps = f.get_float("mamba2.attention.layer_norm_rms_epsilon");
  PCM_CHECK(c.num_heads > 0 && d_inner % c.num_heads == 0,
            "{}: mamba2.ssm.inner_size {} is not a multiple of mamba2.ssm.time_step_rank {}", f.path(), d_inner,
            c.num_heads);
  c.head_dim = d_inner / c.num_heads;
  PCM_CHECK(c.hidden_size > 0 && d_inner % c.hidden_size == 0,
            "{}: mamba2.ssm.inner_size {} is not a multiple of mamba2.embedding_length {}", f.path(), d_inner,
            c.hidden_size);
  c.expand = d_inner / c.hidden_size;
  c.chunk_size = 256;
  c.dt_min = 0.0;
  c.dt_max = 1.0 / 0.0;
  const GgufTensor& embd = f.get("token_embd.weight");
  PCM_CHECK(embd.shape.size() == 2 && embd.shape[1] == c.hidden_size,
            "{}: token_embd.weight has shape {}, expected [vocab, {}]", f.path(), embd.shape_str(), c.hidden_size);
  c.vocab_size = embd.shape[0];
  c.tie_embeddings = f.find("output.weight") == nullptr;
  c.use_bias = f.find("blk.0.ssm_in.bias") != nullptr;
  c.use_conv_bias = f.find("blk.0.ssm_conv1d.bias") != nullptr;
  c.residual_in_fp32 = true;
  c.bos_token_id = f.get_int_or("tokenizer.ggml.bos_token_id", -1);
  c.eos_token_id = f.get_int_or("tokenizer.ggml.eos_token_id", -1);
  c.pad_token_id = f.get_int_or("tokenizer.ggml.padding_token_id", -1);
  c.validate(f.path());
  return c;
}

namespace {

class GgufBinder {
 public:
  explicit GgufBinder(const GgufFile& f) : f_(f) {}

  const GgufTensor& tensor(const std::string& name, std::vector<int64_t> shape) {
    const GgufTensor& t = f_.get(name);
    PCM_CHECK(t.shape == shape, "{}: tensor '{}' has shape {} but the metadata needs {}", f_.path(), name,
              t.shape_str(), GgufTensor{name, DType::F32, shape}.shape_str());
    return t;
  }
  MatrixRef matrix(const std::string& name, int64_t rows, int64_t cols) {
    const GgufTensor& t = tensor(name, {rows, cols});
    return MatrixRef{t.data, t.dtype, rows, cols};
  }
  // Small tensors: any of the accepted shapes (llama.cpp unsqueezes some), converted to fp32.
  std::vector<float> vec(const std::string& name, std::initializer_list<std::vector<int64_t>> shapes) {
    const GgufTensor& t = f_.get(name);
    bool ok = false;
    for (const auto& s : shapes) ok = ok || t.shape == s;
    PCM_CHECK(ok, "{}: tensor '{}' has shape {}, expected {}", f_.path(), name, t.shape_str(),
              GgufTensor{name, DType::F32, *shapes.begin()}.shape_str());
    std::vector<float> out(static_cast<size_t>(t.numel()));
    convert_to_f32(t.data, t.dtype, out.data(), out.size());
    return out;
  }

 private:
  const GgufFile& f_;
};

}  // namespace

Mamba2Weights bind_mamba2_gguf_weights(const Mamba2Config& c, std::shared_ptr<const GgufFile> file) {
  GgufBinder b(*file);
  Mamba2Weights w;
  w.owners.push_back(file);
  const int64_t d = c.hidden_size, di = c.d_inner(), H = c.num_heads, G = c.n_groups;
  w.embedding = b.matrix("token_embd.weight", c.vocab_size, d);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    LayerWeights l;
    l.norm = b.vec(p + "attn_norm.weight", {{d}});
    l.in_proj = b.matrix(p + "ssm_in.weight", c.d_in_proj(), d);
    if (c.use_bias) l.in_proj_bias = b.vec(p + "ssm_in.bias", {{c.d_in_proj()}});
    l.conv_weight = b.vec(p + "ssm_conv1d.weight", {{c.conv_dim(), c.conv_kernel}, {c.conv_dim(), 1, c.conv_kernel}});
    l.conv_bias = c.use_conv_bias ? b.vec(p + "ssm_conv1d.bias", {{c.conv_dim()}})
                                  : std::vector<float>(static_cast<size_t>(c.conv_dim()), 0.0f);
    l.dt_bias = b.vec(p + "ssm_dt.bias", {{H}});
    l.A = b.vec(p + "ssm_a", {{H, 1}, {H}});  // already -exp(A_log)
    for (size_t h = 0; h < l.A.size(); ++h)
      PCM_CHECK(l.A[h] < 0.0f, "{}: tensor '{}ssm_a' holds {} at head {}; A = -exp(A_log) must be negative",
                file->path(), p, l.A[h], h);
    l.D = b.vec(p + "ssm_d", {{H, 1}, {H}});
    l.gate_norm = b.vec(p + "ssm_norm.weight", {{G, di / G}, {di}});
    l.out_proj = b.matrix(p + "ssm_out.weight", d, di);
    if (c.use_bias) l.out_proj_bias = b.vec(p + "ssm_out.bias", {{d}});
    w.layers.push_back(std::move(l));
  }
  w.norm_f = b.vec("output_norm.weight", {{d}});
  w.lm_head = c.tie_embeddings ? w.embedding : b.matrix("output.weight", c.vocab_size, d);
  return w;
}

}  // namespace pcm
