#include "model/model.h"

#include <algorithm>
#include <cmath>

#include "io/checkpoint.h"
#include "kernels/cpu/activations.h"
#include "model/gguf_model.h"
#include "model/quantize.h"
#include "kernels/cpu/conv1d.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/ssd.h"
#include "util/error.h"

namespace pcm {

Mamba2Model::Mamba2Model(Mamba2Config config, Mamba2Weights weights)
    : config_(std::move(config)), weights_(std::move(weights)) {
  set_max_batch_tokens(512);
}

Mamba2Model Mamba2Model::load(const std::string& model_dir) {
  if (is_gguf_path(model_dir)) {
    auto file = std::make_shared<const GgufFile>(model_dir);
    Mamba2Config config = mamba2_config_from_gguf(*file);
    Mamba2Weights weights = bind_mamba2_gguf_weights(config, file);
    return Mamba2Model(std::move(config), std::move(weights));
  }
  Mamba2Config config = load_mamba2_config(model_dir);
  auto files = std::make_shared<const CheckpointFiles>(model_dir);
  Mamba2Weights weights = bind_mamba2_weights(config, files);
  return Mamba2Model(std::move(config), std::move(weights));
}

void Mamba2Model::quantize_q8_0() { quantize_weights_q8_0(weights_); }

void Mamba2Model::set_max_batch_tokens(int64_t n) {
  PCM_CHECK(n > 0, "max batch tokens must be > 0");
  const int64_t Q = config_.chunk_size;
  max_batch_tokens_ = std::max<int64_t>(1, (n + Q - 1) / Q) * Q;
}

void Mamba2Model::reserve(int64_t rows) {
  if (rows <= ws_.rows) return;
  const auto& c = config_;
  auto grow = [rows](std::vector<float>& v, int64_t per_row) { v.resize(static_cast<size_t>(rows * per_row)); };
  grow(ws_.resid, c.hidden_size);
  grow(ws_.xbcdt, c.conv_dim() + c.num_heads);  // >= d_inner: y reuses it
  grow(ws_.dt, c.num_heads);
  grow(ws_.a, std::max(c.hidden_size, c.conv_dim()));
  grow(ws_.b, std::max(c.d_inner(), c.hidden_size));
  cpu::SsdShape shape{c.num_heads, c.head_dim, c.n_groups, c.state_size};
  ws_.ssd_scratch.resize(static_cast<size_t>(cpu::ssd_chunked_scratch_floats(c.chunk_size, shape)));
  ws_.rows = rows;
}

void Mamba2Model::check_tokens(std::span<const int32_t> tokens) const {
  for (size_t i = 0; i < tokens.size(); ++i)
    PCM_CHECK(tokens[i] >= 0 && tokens[i] < config_.vocab_size,
              "token id {} at position {} is outside the vocabulary (size {})", tokens[i], i, config_.vocab_size);
}

void Mamba2Model::mixer(int64_t layer, int64_t T, std::span<const Segment> segments) {
  const auto& c = config_;
  const LayerWeights& w = weights_.layers[static_cast<size_t>(layer)];
  const int64_t d = c.hidden_size, di = c.d_inner(), H = c.num_heads, cd = c.conv_dim();
  const int64_t GN = c.n_groups * c.state_size;
  const float eps = static_cast<float>(c.norm_eps);
  const int64_t xs = cd + H;  // row stride of in_proj's xBC|dt output
  float *xn = ws_.a.data(), *xbc_all = ws_.a.data(), *yn = ws_.a.data();  // one after another
  float *z = ws_.b.data(), *out = ws_.b.data();
  float* y_all = ws_.xbcdt.data();  // once the conv and dt have read xBC|dt
  const float* bias = w.in_proj_bias.empty() ? nullptr : w.in_proj_bias.data();

  cpu::rmsnorm_forward(xn, ws_.resid.data(), w.norm.data(), T, d, eps);
  // in_proj rows: z [di] | xBC [cd] | dt [H]
  cpu::matmul_forward(ws_.xbcdt.data(), xn, w.in_proj.rows_view(di, xs), bias ? bias + di : nullptr, T, precision());
  cpu::matmul_forward(z, xn, w.in_proj.rows_view(0, di), bias, T, precision());
  for (const Segment& s : segments)
    cpu::conv1d_silu_forward(xbc_all + s.begin * cd, ws_.xbcdt.data() + s.begin * xs, xs,
                             s.state->conv_layer(layer), w.conv_weight.data(), w.conv_bias.data(), s.length, cd,
                             c.conv_kernel);
  const float dt_min = static_cast<float>(c.dt_min), dt_max = static_cast<float>(c.dt_max);
  for (int64_t t = 0; t < T; ++t) {
    const float* raw = ws_.xbcdt.data() + t * xs + cd;
    for (int64_t h = 0; h < H; ++h)
      ws_.dt[static_cast<size_t>(t * H + h)] = std::clamp(cpu::softplus(raw[h] + w.dt_bias[h]), dt_min, dt_max);
  }
  const cpu::SsdShape shape{H, c.head_dim, c.n_groups, c.state_size};
  for (const Segment& s : segments) {
    const float* xbc = xbc_all + s.begin * cd;
    cpu::SsdInputs in{xbc, xbc + di, xbc + di + GN, cd, ws_.dt.data() + s.begin * H, w.A.data(), w.D.data()};
    float* y = y_all + s.begin * di;
    if (s.length == 1)
      cpu::ssd_recurrent_forward(y, in, s.state->ssm_layer(layer), 1, shape);
    else
      cpu::ssd_chunked_forward(y, in, s.state->ssm_layer(layer), s.length, c.chunk_size, shape,
                               ws_.ssd_scratch.data());
  }
  cpu::gated_rmsnorm_forward(yn, y_all, z, di, w.gate_norm.data(), T, di, di / c.n_groups, eps);
  cpu::matmul_forward(out, yn, w.out_proj,
                      w.out_proj_bias.empty() ? nullptr : w.out_proj_bias.data(), T, precision());
  float* resid = ws_.resid.data();
#pragma omp parallel for schedule(static) if (T * d > 65536)
  for (int64_t i = 0; i < T * d; ++i) resid[i] += out[i];
}

void Mamba2Model::forward(std::span<const int32_t> tokens, std::span<const Segment> segments,
                          std::span<const int64_t> logit_rows, float* logits) {
  const int64_t T = static_cast<int64_t>(tokens.size());
  if (T == 0) return;
  PCM_CHECK(T <= max_batch_tokens_, "forward: {} tokens exceed max_batch_tokens {}", T, max_batch_tokens_);
  int64_t covered = 0;
  for (const Segment& s : segments) {
    PCM_CHECK(s.state && s.length > 0 && s.begin == covered, "forward: segments must tile the tokens in order");
    PCM_CHECK(s.state->fits(config_), "forward: a sequence state was made for another model");
    covered += s.length;
  }
  PCM_CHECK(covered == T, "forward: segments cover {} of {} tokens", covered, T);
  check_tokens(tokens);
  reserve(std::max<int64_t>(T, static_cast<int64_t>(logit_rows.size())));

  const int64_t d = config_.hidden_size;
#pragma omp parallel for schedule(static) if (T > 1)
  for (int64_t t = 0; t < T; ++t) weights_.embedding.row_to_f32(tokens[static_cast<size_t>(t)], ws_.resid.data() + t * d);
  for (int64_t l = 0; l < config_.num_layers; ++l) mixer(l, T, segments);
  for (const Segment& s : segments) s.state->tokens_seen += s.length;

  if (logit_rows.empty() || !logits) return;
  const int64_t n = static_cast<int64_t>(logit_rows.size());
  for (int64_t i = 0; i < n; ++i) {  // gather the wanted rows, then one final norm + head over them
    int64_t r = logit_rows[static_cast<size_t>(i)];
    PCM_CHECK(r >= 0 && r < T, "forward: logit row {} outside 0..{}", r, T - 1);
    std::copy_n(ws_.resid.data() + r * d, d, ws_.b.data() + i * d);
  }
  cpu::rmsnorm_forward(ws_.a.data(), ws_.b.data(), weights_.norm_f.data(), n, d,
                       static_cast<float>(config_.norm_eps));
  cpu::matmul_forward(logits, ws_.a.data(), weights_.lm_head, nullptr, n, precision());
}

void Mamba2Model::prefill(std::span<const int32_t> tokens, SequenceState& state, float* logits, bool all_positions) {
  PCM_CHECK(!tokens.empty(), "empty prompt: at least one token is needed");
  check_tokens(tokens);
  const int64_t T = static_cast<int64_t>(tokens.size());
  std::vector<int64_t> rows;
  for (int64_t start = 0; start < T; start += max_batch_tokens_) {
    const int64_t len = std::min(max_batch_tokens_, T - start);
    Segment seg{0, len, &state};
    rows.clear();
    float* out = nullptr;
    if (logits && all_positions) {
      for (int64_t i = 0; i < len; ++i) rows.push_back(i);
      out = logits + start * config_.vocab_size;
    } else if (logits && start + len == T) {
      rows.push_back(len - 1);
      out = logits;
    }
    forward(tokens.subspan(static_cast<size_t>(start), static_cast<size_t>(len)), std::span(&seg, 1), rows, out);
  }
}

void Mamba2Model::final_hidden(std::span<const int32_t> tokens, SequenceState& state, float* hidden) {
  PCM_CHECK(!tokens.empty(), "empty input: at least one token is needed");
  const int64_t T = static_cast<int64_t>(tokens.size()), d = config_.hidden_size;
  for (int64_t start = 0; start < T; start += max_batch_tokens_) {
    const int64_t len = std::min(max_batch_tokens_, T - start);
    Segment seg{0, len, &state};
    forward(tokens.subspan(static_cast<size_t>(start), static_cast<size_t>(len)), std::span(&seg, 1), {}, nullptr);
    // forward() leaves the residual stream of its rows in the workspace.
    cpu::rmsnorm_forward(hidden + start * d, ws_.resid.data(), weights_.norm_f.data(), len, d,
                         static_cast<float>(config_.norm_eps));
  }
}

void Mamba2Model::decode(std::span<const int32_t> tokens, std::span<SequenceState* const> states, float* logits) {
  PCM_CHECK(tokens.size() == states.size(), "decode: {} tokens for {} states", tokens.size(), states.size());
  const int64_t B = static_cast<int64_t>(tokens.size());
  for (int64_t start = 0; start < B; start += max_batch_tokens_) {
    const int64_t n = std::min(max_batch_tokens_, B - start);
    // Reused member vectors: no heap allocation per step once the batch size has been seen.
    decode_segments_.resize(static_cast<size_t>(n));
    decode_rows_.resize(static_cast<size_t>(n));
    for (int64_t b = 0; b < n; ++b) {
      decode_segments_[static_cast<size_t>(b)] = Segment{b, 1, states[static_cast<size_t>(start + b)]};
      decode_rows_[static_cast<size_t>(b)] = b;
    }
    forward(tokens.subspan(static_cast<size_t>(start), static_cast<size_t>(n)), decode_segments_, decode_rows_,
            logits + start * config_.vocab_size);
  }
}

}  // namespace pcm
