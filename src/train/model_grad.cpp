// loss_and_grad: the Mamba-2 forward over a packed batch with the activations each backward op needs,
// then the backward in reverse layer order. All rows' tokens form one [T_total, ·] matrix for the
// projections (one sgemm each); conv and SSD run per document segment from zero state, so a packed
// row computes exactly what each document alone computes and no gradient crosses a document start.
#include "train/model_grad.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/activations.h"
#include "kernels/cpu/conv1d.h"
#include "kernels/cpu/conv1d_backward.h"
#include "kernels/cpu/dt_embedding.h"
#include "kernels/cpu/loss.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_backward.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/norm_backward.h"
#include "kernels/cpu/ssd.h"
#include "kernels/cpu/ssd_backward.h"
#include "util/error.h"

namespace pcm {

namespace {

// Pointers to one layer's tensors inside a ParamSet (parameters or gradients).
template <typename F>
struct LayerPtrs {
  F *norm, *in_w, *in_b, *conv_w, *conv_b, *dt_bias, *A_log, *D, *gate_norm, *out_w, *out_b;
};

template <typename F, typename PS>
struct ModelPtrs {
  F* embedding;
  std::vector<LayerPtrs<F>> layers;
  F* norm_f;
  F* lm_head;  // the embedding when tied
};

template <typename F, typename PS>
ModelPtrs<F, PS> bind(const Mamba2Config& c, PS& ps, const char* what) {
  auto get = [&](const std::string& name, int64_t numel) -> F* {
    auto* t = ps.find(name);
    PCM_CHECK(t, "loss_and_grad: {} has no tensor '{}'", what, name);
    PCM_CHECK(t->numel() == numel, "loss_and_grad: {} tensor '{}' has {} elements, the config needs {}", what, name,
              t->numel(), numel);
    return t->data.data();
  };
  auto opt = [&](bool present, const std::string& name, int64_t numel) -> F* {
    return present ? get(name, numel) : nullptr;
  };
  const int64_t d = c.hidden_size, H = c.num_heads;
  ModelPtrs<F, PS> m;
  m.embedding = get("backbone.embeddings.weight", c.vocab_size * d);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = "backbone.layers." + std::to_string(i) + ".";
    LayerPtrs<F> l;
    l.norm = get(p + "norm.weight", d);
    l.in_w = get(p + "mixer.in_proj.weight", c.d_in_proj() * d);
    l.in_b = opt(c.use_bias, p + "mixer.in_proj.bias", c.d_in_proj());
    l.conv_w = get(p + "mixer.conv1d.weight", c.conv_dim() * c.conv_kernel);
    l.conv_b = opt(c.use_conv_bias, p + "mixer.conv1d.bias", c.conv_dim());
    l.dt_bias = get(p + "mixer.dt_bias", H);
    l.A_log = get(p + "mixer.A_log", H);
    l.D = get(p + "mixer.D", H);
    l.gate_norm = get(p + "mixer.norm.weight", c.d_inner());
    l.out_w = get(p + "mixer.out_proj.weight", d * c.d_inner());
    l.out_b = opt(c.use_bias, p + "mixer.out_proj.bias", d);
    m.layers.push_back(l);
  }
  m.norm_f = get("backbone.norm_f.weight", d);
  m.lm_head = c.tie_embeddings ? m.embedding : get("lm_head.weight", c.vocab_size * d);
  return m;
}

struct Segment {
  int64_t begin, length;
};

void grow(std::vector<float>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
}

}  // namespace

// The activations of one layer that its backward reads.
struct LayerActs {
  std::vector<float> xn;   // [T, d]       rmsnorm(residual in)
  std::vector<float> zx;   // [T, d_in_proj] in_proj output: z | xBC (pre-conv) | dt (raw)
  std::vector<float> xbc;  // [T, conv_dim] conv + SiLU output: x | B | C
  std::vector<float> dt;   // [T, H]       softplus + clamp
  std::vector<float> y;    // [T, d_inner] SSD output
  std::vector<float> yn;   // [T, d_inner] gated RMSNorm output
};

struct GradWorkspace {
  std::vector<std::vector<float>> resid;  // [L + 1][T, d]: each layer's input, then the final residual
  std::vector<LayerActs> acts;            // L of them, or 1 when recomputing
  std::vector<float> out, A, zero_bias, window, ssd_state, ssd_scratch, ssd_bwd_scratch;
  std::vector<float> dresid, dxn, dzx, dxbc, ddt, dy, dyn, dA;
  std::vector<float> head_x, head_xn, head_dx, head_dxn, xent_scratch;
  std::vector<int32_t> head_targets;
  std::vector<int64_t> head_rows;
};

std::unique_ptr<GradWorkspace, void (*)(GradWorkspace*)> make_grad_workspace() {
  return {new GradWorkspace, [](GradWorkspace* w) { delete w; }};
}

namespace {

struct Engine {
  const Mamba2Config& c;
  GradWorkspace& ws;
  int64_t T;
  std::vector<Segment> segments;

  int64_t d() const { return c.hidden_size; }

  void reserve(LayerActs& a) {
    grow(a.xn, T * d());
    grow(a.zx, T * c.d_in_proj());
    grow(a.xbc, T * c.conv_dim());
    grow(a.dt, T * c.num_heads);
    grow(a.y, T * c.d_inner());
    grow(a.yn, T * c.d_inner());
  }

  const float* conv_bias(const float* b) {
    if (b) return b;
    grow(ws.zero_bias, c.conv_dim());
    std::fill(ws.zero_bias.begin(), ws.zero_bias.end(), 0.0f);
    return ws.zero_bias.data();
  }

  void compute_A(const float* A_log) {
    grow(ws.A, c.num_heads);
    for (int64_t h = 0; h < c.num_heads; ++h) ws.A[static_cast<size_t>(h)] = -std::exp(A_log[h]);
  }

  // resid_out = resid_in + mixer(rmsnorm(resid_in)); fills `a`.
  void layer_forward(const LayerPtrs<const float>& w, const float* resid_in, float* resid_out, LayerActs& a) {
    const int64_t D = d(), di = c.d_inner(), H = c.num_heads, dpr = c.d_in_proj(), cd = c.conv_dim(),
                  K = c.conv_kernel, GN = c.n_groups * c.state_size;
    const float eps = static_cast<float>(c.norm_eps);
    cpu::rmsnorm_forward(a.xn.data(), resid_in, w.norm, T, D, eps);
    cpu::matmul_forward(a.zx.data(), a.xn.data(), MatrixRef{w.in_w, DType::F32, dpr, D}, w.in_b, T);
    const float* cb = conv_bias(w.conv_b);
    grow(ws.window, cd * K);
    for (const Segment& s : segments) {
      std::fill(ws.window.begin(), ws.window.end(), 0.0f);
      cpu::conv1d_silu_forward(a.xbc.data() + s.begin * cd, a.zx.data() + s.begin * dpr + di, dpr, ws.window.data(),
                               w.conv_w, cb, s.length, cd, K);
    }
    cpu::dt_softplus_forward(a.dt.data(), a.zx.data() + di + cd, dpr, w.dt_bias, T, H, static_cast<float>(c.dt_min),
                             static_cast<float>(c.dt_max));
    compute_A(w.A_log);
    const cpu::SsdShape shape{H, c.head_dim, c.n_groups, c.state_size};
    grow(ws.ssd_state, H * c.head_dim * c.state_size);
    grow(ws.ssd_scratch, cpu::ssd_chunked_scratch_floats(c.chunk_size, shape));
    for (const Segment& s : segments) {
      std::fill(ws.ssd_state.begin(), ws.ssd_state.end(), 0.0f);
      const float* xbc = a.xbc.data() + s.begin * cd;
      cpu::SsdInputs in{xbc, xbc + di, xbc + di + GN, cd, a.dt.data() + s.begin * H, ws.A.data(), w.D};
      cpu::ssd_chunked_forward(a.y.data() + s.begin * di, in, ws.ssd_state.data(), s.length, c.chunk_size, shape,
                               ws.ssd_scratch.data());
    }
    cpu::gated_rmsnorm_forward(a.yn.data(), a.y.data(), a.zx.data(), dpr, w.gate_norm, T, di, di / c.n_groups, eps);
    grow(ws.out, T * D);
    cpu::matmul_forward(ws.out.data(), a.yn.data(), MatrixRef{w.out_w, DType::F32, D, di}, w.out_b, T);
    const float* out = ws.out.data();
#pragma omp parallel for schedule(static) if (T * D > 65536)
    for (int64_t i = 0; i < T * D; ++i) resid_out[i] = resid_in[i] + out[i];
  }

  // ws.dresid holds d loss / d resid_out on entry and d loss / d resid_in on exit.
  void layer_backward(const LayerPtrs<const float>& w, const LayerPtrs<float>& g, const float* resid_in,
                      const LayerActs& a) {
    const int64_t D = d(), di = c.d_inner(), H = c.num_heads, dpr = c.d_in_proj(), cd = c.conv_dim(),
                  K = c.conv_kernel, GN = c.n_groups * c.state_size;
    const float eps = static_cast<float>(c.norm_eps);
    grow(ws.dyn, T * di);
    grow(ws.dy, T * di);
    grow(ws.dzx, T * dpr);
    grow(ws.dxbc, T * cd);
    grow(ws.ddt, T * H);
    grow(ws.dxn, T * D);
    // residual += out_proj(yn)
    cpu::matmul_backward(ws.dyn.data(), g.out_w, g.out_b, ws.dresid.data(), a.yn.data(), w.out_w, T, D, di);
    // yn = gated_rmsnorm(y, z): dz lands in dzx[:, 0:di]
    cpu::gated_rmsnorm_backward(ws.dy.data(), ws.dzx.data(), dpr, g.gate_norm, ws.dyn.data(), a.y.data(),
                                a.zx.data(), dpr, w.gate_norm, T, di, di / c.n_groups, eps);
    // SSD per segment, from zero state
    compute_A(w.A_log);
    grow(ws.dA, H);
    std::fill(ws.dA.begin(), ws.dA.end(), 0.0f);
    const cpu::SsdShape shape{H, c.head_dim, c.n_groups, c.state_size};
    int64_t longest = 0;
    for (const Segment& s : segments) longest = std::max(longest, s.length);
    grow(ws.ssd_bwd_scratch, cpu::ssd_backward_scratch_floats(longest, shape));
    for (const Segment& s : segments) {
      const float* xbc = a.xbc.data() + s.begin * cd;
      float* dxbc = ws.dxbc.data() + s.begin * cd;
      cpu::SsdInputs in{xbc, xbc + di, xbc + di + GN, cd, a.dt.data() + s.begin * H, ws.A.data(), w.D};
      cpu::SsdGrads sg{dxbc, dxbc + di, dxbc + di + GN, cd, ws.ddt.data() + s.begin * H, ws.dA.data(), g.D, nullptr};
      cpu::ssd_chunked_backward(sg, ws.dy.data() + s.begin * di, in, nullptr, s.length, c.chunk_size, shape,
                        ws.ssd_bwd_scratch.data());
    }
    for (int64_t h = 0; h < H; ++h) g.A_log[h] += ws.dA[static_cast<size_t>(h)] * ws.A[static_cast<size_t>(h)];
    // dt = clamp(softplus(raw + dt_bias)): no gradient where the clamp is active (as torch.clamp)
    cpu::dt_softplus_backward(ws.dzx.data() + di + cd, dpr, g.dt_bias, ws.ddt.data(), a.zx.data() + di + cd, dpr,
                              w.dt_bias, T, H, static_cast<float>(c.dt_min), static_cast<float>(c.dt_max));
    // conv per segment: d xBC (pre-conv) lands in dzx[:, di:di+cd]
    const float* cb = conv_bias(w.conv_b);
    for (const Segment& s : segments)
      cpu::conv1d_silu_backward(ws.dzx.data() + s.begin * dpr + di, dpr, g.conv_w, g.conv_b, nullptr,
                                ws.dxbc.data() + s.begin * cd, a.zx.data() + s.begin * dpr + di, dpr, nullptr,
                                w.conv_w, cb, s.length, cd, K);
    // zx = in_proj(xn); xn = rmsnorm(resid_in)
    cpu::matmul_backward(ws.dxn.data(), g.in_w, g.in_b, ws.dzx.data(), a.xn.data(), w.in_w, T, dpr, D);
    cpu::rmsnorm_backward(ws.dresid.data(), g.norm, ws.dxn.data(), resid_in, w.norm, T, D, eps, true);
  }
};

}  // namespace

LossResult loss_and_grad(const Mamba2Config& config, const ParamSet& params, const PackedBatch& batch,
                         ParamSet* grads, const GradOptions& options) {
  const int64_t T = batch.rows * batch.seq_len, V = config.vocab_size, L = config.num_layers;
  PCM_CHECK(batch.rows >= 0 && batch.seq_len >= 0, "loss_and_grad: negative batch shape");
  PCM_CHECK(static_cast<int64_t>(batch.tokens.size()) == T && static_cast<int64_t>(batch.targets.size()) == T &&
                static_cast<int64_t>(batch.doc_start.size()) == T,
            "loss_and_grad: batch of {} x {} needs {} tokens, targets and doc_start (got {}, {}, {})", batch.rows,
            batch.seq_len, T, batch.tokens.size(), batch.targets.size(), batch.doc_start.size());
  PCM_CHECK(options.vocab_chunk > 0, "loss_and_grad: vocab_chunk must be > 0");
  for (int64_t t = 0; t < T; ++t) {
    const int32_t tok = batch.tokens[static_cast<size_t>(t)], tg = batch.targets[static_cast<size_t>(t)];
    PCM_CHECK(tok >= 0 && tok < V, "loss_and_grad: token {} at position {} is outside the vocabulary ({})", tok, t, V);
    PCM_CHECK(tg >= -1 && tg < V, "loss_and_grad: target {} at position {} is outside the vocabulary ({})", tg, t, V);
  }
  LossResult result{0.0, 0};
  if (T == 0) return result;

  const auto P = bind<const float>(config, params, "params");
  ModelPtrs<float, ParamSet> G{};
  if (grads) G = bind<float>(config, *grads, "grads");

  std::unique_ptr<GradWorkspace, void (*)(GradWorkspace*)> owned{nullptr, [](GradWorkspace* w) { delete w; }};
  GradWorkspace* wsp = options.workspace;
  if (!wsp) {
    owned = make_grad_workspace();
    wsp = owned.get();
  }
  GradWorkspace& ws = *wsp;
  Engine e{config, ws, T, {}};
  for (int64_t t = 0; t < T; ++t) {
    if (t % batch.seq_len == 0 || batch.doc_start[static_cast<size_t>(t)]) e.segments.push_back({t, 0});
    e.segments.back().length++;
  }

  const int64_t d = config.hidden_size;
  const bool recompute = options.recompute_per_layer;
  ws.resid.resize(static_cast<size_t>(L + 1));
  for (auto& r : ws.resid) grow(r, T * d);
  ws.acts.resize(recompute ? 1 : static_cast<size_t>(L));
  for (auto& a : ws.acts) e.reserve(a);

  // Forward.
  cpu::embedding_forward(ws.resid[0].data(), P.embedding, batch.tokens.data(), T, d);
  for (int64_t l = 0; l < L; ++l)
    e.layer_forward(P.layers[static_cast<size_t>(l)], ws.resid[static_cast<size_t>(l)].data(),
                    ws.resid[static_cast<size_t>(l + 1)].data(), ws.acts[recompute ? 0 : static_cast<size_t>(l)]);

  // Head over the rows that have a target only.
  ws.head_rows.clear();
  ws.head_targets.clear();
  for (int64_t t = 0; t < T; ++t)
    if (batch.targets[static_cast<size_t>(t)] >= 0) {
      ws.head_rows.push_back(t);
      ws.head_targets.push_back(batch.targets[static_cast<size_t>(t)]);
    }
  const int64_t n = static_cast<int64_t>(ws.head_rows.size());
  result.tokens = n;
  const float eps = static_cast<float>(config.norm_eps);
  const float* final_resid = ws.resid[static_cast<size_t>(L)].data();
  if (n > 0) {
    grow(ws.head_x, n * d);
    grow(ws.head_xn, n * d);
    for (int64_t i = 0; i < n; ++i)
      std::memcpy(ws.head_x.data() + i * d, final_resid + ws.head_rows[static_cast<size_t>(i)] * d, sizeof(float) * d);
    cpu::rmsnorm_forward(ws.head_xn.data(), ws.head_x.data(), P.norm_f, n, d, eps);
    const int64_t vc = std::min(options.vocab_chunk, V);
    grow(ws.xent_scratch, cpu::lm_head_xent_scratch_floats(n, vc));
    if (grads) grow(ws.head_dxn, n * d);
    result.loss_sum = cpu::lm_head_xent(grads ? ws.head_dxn.data() : nullptr, grads ? G.lm_head : nullptr,
                                        ws.head_xn.data(), P.lm_head, ws.head_targets.data(), n, V, d, vc,
                                        ws.xent_scratch.data());
  }
  if (!grads) return result;

  // Backward.
  grow(ws.dresid, T * d);
  std::fill(ws.dresid.begin(), ws.dresid.begin() + T * d, 0.0f);
  if (n > 0) {
    grow(ws.head_dx, n * d);
    cpu::rmsnorm_backward(ws.head_dx.data(), G.norm_f, ws.head_dxn.data(), ws.head_x.data(), P.norm_f, n, d, eps,
                          false);
    for (int64_t i = 0; i < n; ++i) {
      float* dst = ws.dresid.data() + ws.head_rows[static_cast<size_t>(i)] * d;
      const float* src = ws.head_dx.data() + i * d;
      for (int64_t k = 0; k < d; ++k) dst[k] += src[k];
    }
  }
  for (int64_t l = L - 1; l >= 0; --l) {
    const auto& w = P.layers[static_cast<size_t>(l)];
    LayerActs& a = ws.acts[recompute ? 0 : static_cast<size_t>(l)];
    const float* resid_in = ws.resid[static_cast<size_t>(l)].data();
    if (recompute) {  // the same code as the forward, so the activations are bit-identical
      grow(ws.out, T * d);
      std::vector<float>& scratch_resid = ws.resid[static_cast<size_t>(L)];  // final residual no longer needed
      e.layer_forward(w, resid_in, scratch_resid.data(), a);
    }
    e.layer_backward(w, G.layers[static_cast<size_t>(l)], resid_in, a);
  }
  cpu::embedding_backward(G.embedding, ws.dresid.data(), batch.tokens.data(), T, d);
  return result;
}

}  // namespace pcm
