// The CUDA training backend: fp32 master parameters, gradients and AdamW moments resident on one GPU in
// the ParamSet's order, and loss_and_grad on the device with the structure of model_grad.cpp (forward
// with saved activations, explicit backward in reverse layer order). The forward reuses the inference
// kernels (exact fp32 modes); each packed document runs from zero conv/SSM state, as on the CPU. Only
// the loss and norm scalars come back per step; parameters and moments come back for checkpoints.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <numeric>
#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/train_gemm_cuda.h"
#include "kernels/cuda/train_ops.h"
#include "train/section_timer_cuda.h"
#include "train/train_backend.h"
#include "util/error.h"

namespace pcm {
namespace {

// A growable device array; contents are not kept when it grows (everything here is per-call scratch).
template <class T>
class DeviceArray {
 public:
  DeviceArray() = default;
  ~DeviceArray() { cudaFree(p_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  T* ensure(int64_t n) {
    n = std::max<int64_t>(n, 1);
    if (n > cap_) {
      cudaFree(p_);
      p_ = nullptr;
      PCM_CUDA(cudaMalloc(reinterpret_cast<void**>(&p_), static_cast<size_t>(n) * sizeof(T)));
      cap_ = n;
    }
    return p_;
  }
  T* get() const { return p_; }

 private:
  T* p_ = nullptr;
  int64_t cap_ = 0;
};

struct DevLayer {
  float *norm, *in_w, *in_b, *conv_w, *conv_b, *dt_bias, *A_log, *D, *gate_norm, *out_w, *out_b;
};

struct DevModel {
  float* embedding = nullptr;
  std::vector<DevLayer> layers;
  float* norm_f = nullptr;
  float* lm_head = nullptr;  // the embedding when tied
};

// The activations of one layer that its backward reads (as LayerActs in model_grad.cpp). zx, dt and y
// are kept per layer; xn, xbc and yn are cheap elementwise/normalisation outputs of those (and of the
// layer input), so they live in one buffer shared by all layers: the backward recomputes xbc with the
// forward's kernel (bit-identical), yn inside the gated norm's backward and xn inside the RMSNorm's
// backward (same formulas, their own summation order): 45% less activation memory for ~1% more time.
// xn and yn are only ever projection operands: in bf16 mode their producers write them as bf16 (in the
// first half of their fp32 slots). bf16 training with the bf16 forward SSD also keeps y in bf16 (as autocast
// does: half its memory and traffic) and, for the tc SSD backward, the forward's chunk cumsum and entering
// states (cs, states; else null), which the backward then takes instead of recomputing them: the 3.2 GB of
// states at 1.3B 4 x 2048 are what bf16 y frees. With bf16 y and no in_proj bias, zx (the in_proj output) is
// kept in bf16 as well, as autocast's Linear writes it: its readers (conv, dt, gated norm, their backwards)
// take bf16, and it is the largest activation (6.7 GB less at 1.3B 4 x 2048); without --recompute that pays for
// keeping xbc per layer too (not recomputed in the backward).
struct Acts {
  float *xn, *xbc, *dt, *y, *yn;
  void* zx;  // [T, d_in_proj]: fp32, or bf16 with zx_bf16
  bool y_bf16 = false, zx_bf16 = false;
  float *cs = nullptr, *cb = nullptr, *states = nullptr;
  // zx from column `col` of row 0 on (row stride d_in_proj elements)
  const void* zx_col(int64_t col) const {
    return static_cast<const char*>(zx) + col * (zx_bf16 ? 2 : 4);
  }
};

// Host-built index arrays of one packed batch, uploaded in one copy.
struct BatchIndex {
  int64_t T = 0, S = 0, chunks = 0, bwd_chunks = 0, n = 0, uniq = 0;
  std::vector<int32_t> host;
  // offsets into `host` / the device copy
  int64_t tokens, row_seq, seq_start, seq_slot, seq_len, seq_chunk, chunk_start, chunk_len, bwd_chunk0,
      row_doc_begin, head_rows, head_targets, emb_uniq, emb_off, emb_pos;
};

constexpr int32_t kBwdQ = 16;  // chunk length of the sequential SSD backward's state bookkeeping

// PCM_SSD_BACKWARD=chunked-tc (default): the matrix-form SSD backward over the forward's chunks, each
// matrix step as one mma.sync block per (chunk, head) where it applies (bf16, head_dim 64), else =chunked:
// the same on the generic 64x64 tiles; =sequential: the per-(document, head) reverse recurrence, kept as
// their reference.
enum class SsdBackward { kSequential, kChunked, kChunkedTc };
SsdBackward ssd_backward_kind() {
  const char* env = std::getenv("PCM_SSD_BACKWARD");
  const std::string v = env ? env : "";
  PCM_CHECK(v.empty() || v == "chunked" || v == "chunked-tc" || v == "sequential",
            "PCM_SSD_BACKWARD must be 'chunked', 'chunked-tc' or 'sequential', got '{}'", v);
  if (v == "sequential") return SsdBackward::kSequential;
  return v == "chunked" ? SsdBackward::kChunked : SsdBackward::kChunkedTc;
}

BatchIndex index_batch(const PackedBatch& b, int64_t Q) {
  BatchIndex ix;
  const int64_t T = b.rows * b.seq_len;
  ix.T = T;
  std::vector<int32_t> seg_begin, seg_len;
  for (int64_t t = 0; t < T; ++t) {
    if (t % b.seq_len == 0 || b.doc_start[static_cast<size_t>(t)]) {
      seg_begin.push_back(static_cast<int32_t>(t));
      seg_len.push_back(0);
    }
    seg_len.back()++;
  }
  ix.S = static_cast<int64_t>(seg_begin.size());
  std::vector<int32_t>& h = ix.host;
  auto put = [&](const std::vector<int32_t>& v) {
    const int64_t off = static_cast<int64_t>(h.size());
    h.insert(h.end(), v.begin(), v.end());
    return off;
  };
  ix.tokens = put(b.tokens);
  std::vector<int32_t> row_seq(static_cast<size_t>(T)), row_doc_begin(static_cast<size_t>(T));
  std::vector<int32_t> seq_start(seg_begin), seq_slot(static_cast<size_t>(ix.S)), seq_chunk, chunk_start, chunk_len,
      bwd_chunk0;
  seq_start.push_back(static_cast<int32_t>(T));
  std::iota(seq_slot.begin(), seq_slot.end(), 0);
  for (int64_t s = 0; s < ix.S; ++s) {
    const int32_t b0 = seg_begin[static_cast<size_t>(s)], len = seg_len[static_cast<size_t>(s)];
    for (int32_t t = 0; t < len; ++t) {
      row_seq[static_cast<size_t>(b0 + t)] = static_cast<int32_t>(s);
      row_doc_begin[static_cast<size_t>(b0 + t)] = b0;
    }
    seq_chunk.push_back(static_cast<int32_t>(chunk_start.size()));
    for (int64_t q0 = 0; q0 < len; q0 += Q) {
      chunk_start.push_back(static_cast<int32_t>(b0 + q0));
      chunk_len.push_back(static_cast<int32_t>(std::min<int64_t>(Q, len - q0)));
    }
    bwd_chunk0.push_back(static_cast<int32_t>(ix.bwd_chunks));
    ix.bwd_chunks += (len + kBwdQ - 1) / kBwdQ;
  }
  seq_chunk.push_back(static_cast<int32_t>(chunk_start.size()));
  ix.chunks = static_cast<int64_t>(chunk_start.size());
  ix.row_seq = put(row_seq);
  ix.seq_start = put(seq_start);
  ix.seq_slot = put(seq_slot);
  ix.seq_len = put(seg_len);
  ix.seq_chunk = put(seq_chunk);
  ix.chunk_start = put(chunk_start);
  ix.chunk_len = put(chunk_len);
  ix.bwd_chunk0 = put(bwd_chunk0);
  ix.row_doc_begin = put(row_doc_begin);
  // Head rows: the positions with a target, in order (as the CPU engine).
  std::vector<int32_t> rows, targets;
  for (int64_t t = 0; t < T; ++t)
    if (b.targets[static_cast<size_t>(t)] >= 0) {
      rows.push_back(static_cast<int32_t>(t));
      targets.push_back(b.targets[static_cast<size_t>(t)]);
    }
  ix.n = static_cast<int64_t>(rows.size());
  ix.head_rows = put(rows);
  ix.head_targets = put(targets);
  // Embedding backward: positions grouped by token (CSR), each group in increasing position order.
  std::vector<int32_t> order(static_cast<size_t>(T));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t c) {
    return b.tokens[static_cast<size_t>(a)] < b.tokens[static_cast<size_t>(c)];
  });
  std::vector<int32_t> uniq, off;
  for (int64_t i = 0; i < T; ++i) {
    const int32_t tok = b.tokens[static_cast<size_t>(order[static_cast<size_t>(i)])];
    if (uniq.empty() || uniq.back() != tok) {
      uniq.push_back(tok);
      off.push_back(static_cast<int32_t>(i));
    }
  }
  off.push_back(static_cast<int32_t>(T));
  ix.uniq = static_cast<int64_t>(uniq.size());
  ix.emb_uniq = put(uniq);
  ix.emb_off = put(off);
  ix.emb_pos = put(order);
  return ix;
}

class CudaTrainBackend : public TrainBackend {
 public:
  CudaTrainBackend(const Mamba2Config& c, ParamSet& params, AdamWState& opt, const TrainBackendOptions& o)
      : c_(c), params_(params), opt_(opt), opts_(o), gemm_(o.precision == "bf16"),
        ssd_bwd_(ssd_backward_kind()) {
    PCM_CHECK(o.precision == "fp32" || o.precision == "bf16", "precision must be fp32 or bf16, got '{}'",
              o.precision);
    PCM_CHECK(o.head_rows > 0, "head_rows must be > 0");
    PCM_CHECK(opt.m.size() == params.size() && opt.v.size() == params.size(),
              "CUDA training: optimizer state does not match the parameters");
    PCM_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    offsets_.resize(params.size() + 1, 0);
    for (size_t i = 0; i < params.size(); ++i) offsets_[i + 1] = offsets_[i] + params[i].numel();
    const int64_t total = offsets_.back();
    for (float** p : {&w_, &g_, &m_, &v_}) PCM_CUDA(cudaMalloc(reinterpret_cast<void**>(p), static_cast<size_t>(total) * 4));
    upload(params, w_);
    upload(opt.m, m_);
    upload(opt.v, v_);
    PCM_CUDA(cudaMemsetAsync(g_, 0, static_cast<size_t>(total) * 4, stream_));
    P_ = bind(w_);
    G_ = bind(g_);
    PCM_CUDA(cudaMalloc(reinterpret_cast<void**>(&scalars_), 2 * sizeof(double)));
    upload_decay_runs();
    zero_bias_.ensure(c_.conv_dim());
    PCM_CUDA(cudaMemsetAsync(zero_bias_.get(), 0, static_cast<size_t>(c_.conv_dim()) * 4, stream_));
    PCM_CUDA(cudaStreamSynchronize(stream_));
  }

  ~CudaTrainBackend() override {
    cudaStreamSynchronize(stream_);
    for (float* p : {w_, g_, m_, v_}) cudaFree(p);
    cudaFree(scalars_);
    cudaStreamDestroy(stream_);
  }

  int64_t peak_device_bytes() const override { return peak_bytes_; }
  std::map<std::string, double> section_ms() const override { return timer_.totals(); }

  void zero_grads() override {
    PCM_CUDA(cudaMemsetAsync(g_, 0, static_cast<size_t>(offsets_.back()) * 4, stream_));
    pending_scale_[0] = pending_scale_[1] = 1.0f;
    pending_scales_ = 0;
  }

  LossResult accumulate(const PackedBatch& batch) override;

  // Deferred: the factors are applied on the way by grad_norm and adamw_step (rounded as scale() would
  // round them), which saves two passes over the gradients per step.
  void scale_grads(float f) override {
    if (pending_scales_ == 2) apply_pending_scales();
    pending_scale_[pending_scales_++] = f;
  }

  double grad_norm() override {
    cuda::sum_squares(scalars_ + 1, g_, offsets_.back(), sq_scratch_.ensure(cuda::sum_squares_scratch_doubles()),
                      stream_, pending_scale_[0], pending_scale_[1]);
    double ss = 0;
    PCM_CUDA(cudaMemcpyAsync(&ss, scalars_ + 1, sizeof(double), cudaMemcpyDeviceToHost, stream_));
    PCM_CUDA(cudaStreamSynchronize(stream_));
    return std::sqrt(ss);
  }

  void adamw_step(const AdamWHyper& h) override {
    opt_.step++;  // the same scalar arithmetic as optimizer.cpp
    const double bc1 = 1.0 - std::pow(h.beta1, static_cast<double>(opt_.step));
    const double bc2 = 1.0 - std::pow(h.beta2, static_cast<double>(opt_.step));
    cuda::AdamWArgs a;
    a.b1 = static_cast<float>(h.beta1);
    a.b2 = static_cast<float>(h.beta2);
    a.step_size = static_cast<float>(h.lr / bc1);
    a.inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
    a.eps = static_cast<float>(h.eps);
    a.decay = static_cast<float>(1.0 - h.lr * h.weight_decay);
    a.g_scale1 = pending_scale_[0];
    a.g_scale2 = pending_scale_[1];
    cuda::adamw(w_, g_, m_, v_, offsets_.back(), run_end_.get(), run_decay_.get(), adam_runs_, a, stream_);
  }

  void sync_to_host() override {
    download(w_, params_);
    download(m_, opt_.m);
    download(v_, opt_.v);
  }

  void download_grads(ParamSet& out) override {
    apply_pending_scales();
    out = params_.zeros_like();
    download(g_, out);
  }

 private:
  void apply_pending_scales() {
    for (int i = 0; i < pending_scales_; ++i) cuda::scale(g_, pending_scale_[i], offsets_.back(), stream_);
    pending_scale_[0] = pending_scale_[1] = 1.0f;
    pending_scales_ = 0;
  }
  // The weight-decay runs of the flat buffer for cuda::adamw: consecutive tensors with the same flag merged.
  void upload_decay_runs() {
    std::vector<int64_t> ends;
    std::vector<uint8_t> decay;
    for (size_t t = 0; t < params_.size(); ++t) {
      if (offsets_[t + 1] == offsets_[t]) continue;
      const uint8_t f = params_[t].weight_decay ? 1 : 0;
      if (!decay.empty() && decay.back() == f)
        ends.back() = offsets_[t + 1];
      else {
        ends.push_back(offsets_[t + 1]);
        decay.push_back(f);
      }
    }
    adam_runs_ = static_cast<int>(ends.size());
    PCM_CUDA(cudaMemcpy(run_end_.ensure(adam_runs_), ends.data(), ends.size() * 8, cudaMemcpyHostToDevice));
    PCM_CUDA(cudaMemcpy(run_decay_.ensure(adam_runs_), decay.data(), decay.size(), cudaMemcpyHostToDevice));
  }
  // A projection operand produced in the GEMM's precision (xn, yn: bf16 in bf16 mode, in an fp32-sized slot).
  cuda::Operand act(const float* p) const {
    return gemm_.bf16() ? cuda::Operand::bf16(reinterpret_cast<const uint16_t*>(p)) : cuda::Operand(p);
  }

  void upload(const ParamSet& ps, float* base) {
    for (size_t i = 0; i < ps.size(); ++i)
      PCM_CUDA(cudaMemcpy(base + offsets_[i], ps[i].data.data(), static_cast<size_t>(ps[i].numel()) * 4,
                          cudaMemcpyHostToDevice));
  }
  void download(const float* base, ParamSet& ps) {
    PCM_CUDA(cudaStreamSynchronize(stream_));
    for (size_t i = 0; i < ps.size(); ++i)
      PCM_CUDA(cudaMemcpy(ps[i].data.data(), base + offsets_[i], static_cast<size_t>(ps[i].numel()) * 4,
                          cudaMemcpyDeviceToHost));
  }

  DevModel bind(float* base) {
    auto get = [&](const std::string& name, int64_t numel) -> float* {
      const int64_t i = params_.index_of(name);
      PCM_CHECK(i >= 0, "CUDA training: the parameters have no tensor '{}'", name);
      PCM_CHECK(params_[static_cast<size_t>(i)].numel() == numel,
                "CUDA training: tensor '{}' has {} elements, the config needs {}", name,
                params_[static_cast<size_t>(i)].numel(), numel);
      return base + offsets_[static_cast<size_t>(i)];
    };
    const int64_t d = c_.hidden_size, H = c_.num_heads;
    DevModel m;
    m.embedding = get("backbone.embeddings.weight", c_.vocab_size * d);
    for (int64_t i = 0; i < c_.num_layers; ++i) {
      const std::string p = "backbone.layers." + std::to_string(i) + ".";
      DevLayer l{};
      l.norm = get(p + "norm.weight", d);
      l.in_w = get(p + "mixer.in_proj.weight", c_.d_in_proj() * d);
      l.in_b = c_.use_bias ? get(p + "mixer.in_proj.bias", c_.d_in_proj()) : nullptr;
      l.conv_w = get(p + "mixer.conv1d.weight", c_.conv_dim() * c_.conv_kernel);
      l.conv_b = c_.use_conv_bias ? get(p + "mixer.conv1d.bias", c_.conv_dim()) : nullptr;
      l.dt_bias = get(p + "mixer.dt_bias", H);
      l.A_log = get(p + "mixer.A_log", H);
      l.D = get(p + "mixer.D", H);
      l.gate_norm = get(p + "mixer.norm.weight", c_.d_inner());
      l.out_w = get(p + "mixer.out_proj.weight", d * c_.d_inner());
      l.out_b = c_.use_bias ? get(p + "mixer.out_proj.bias", d) : nullptr;
      m.layers.push_back(l);
    }
    m.norm_f = get("backbone.norm_f.weight", d);
    m.lm_head = c_.tie_embeddings ? m.embedding : get("lm_head.weight", c_.vocab_size * d);
    return m;
  }

  // resid_out null: the backward's recompute, which stops after the SSD (the gated norm's backward
  // recomputes yn, and nothing reads this layer's output again).
  void layer_forward(const DevLayer& w, const float* resid_in, float* resid_out, const Acts& a);
  // The forward's xbc (conv) again from zx (yn comes from the gated norm's backward, xn from the RMSNorm's).
  void recompute_derived(const DevLayer& w, const Acts& a);
  // bf16_copy: x, B, C in bf16 too, into xbc16_ (the forward SSD's bf16 kernels)
  void conv_forward(const DevLayer& w, const Acts& a, bool bf16_copy = false);
  // dresid16: dresid (the layer output's gradient) in bf16 in bf16 mode, else null; on return it holds the
  // layer input's gradient, as does dresid.
  void layer_backward(const DevLayer& w, const DevLayer& g, const float* resid_in, const Acts& a,
                      uint16_t* dresid16);
  const int32_t* dev_ints(int64_t off) const { return ints_.get() + off; }
  // The forward SSD kernel's chunk length (any length gives the same result; its kernel takes <= 256).
  int64_t ssd_q() const { return std::min<int64_t>(c_.chunk_size, 256); }
  cuda::SsdDims ssd_dims() const {
    return {static_cast<int32_t>(c_.num_heads), static_cast<int32_t>(c_.head_dim), static_cast<int32_t>(c_.n_groups),
            static_cast<int32_t>(c_.state_size)};
  }
  // The batch's chunks of ssd_q() rows, cut from every document start (forward and chunked backward).
  cuda::ChunkTable chunk_table() const {
    const int32_t* ints = ints_.get();
    return {static_cast<int32_t>(ix_.chunks), static_cast<int32_t>(ssd_q()), ints + ix_.chunk_start,
            ints + ix_.chunk_len, ints + ix_.seq_chunk};
  }

  const Mamba2Config c_;
  ParamSet& params_;
  AdamWState& opt_;
  TrainBackendOptions opts_;
  cudaStream_t stream_ = nullptr;
  cuda::TrainGemm gemm_;
  const SsdBackward ssd_bwd_;  // PCM_SSD_BACKWARD, read once
  std::vector<int64_t> offsets_;
  float *w_ = nullptr, *g_ = nullptr, *m_ = nullptr, *v_ = nullptr;
  double* scalars_ = nullptr;  // [0] loss sum, [1] sum of squared gradients
  float pending_scale_[2] = {1.0f, 1.0f};  // scale_grads factors not yet applied to g_
  int pending_scales_ = 0;
  DeviceArray<int64_t> run_end_;
  DeviceArray<uint8_t> run_decay_;
  int adam_runs_ = 0;
  int64_t peak_bytes_ = 0;
  SectionTimer timer_;     // device memory in use (all of the process), highest seen after a batch
  DevModel P_, G_;

  // Per-batch state.
  BatchIndex ix_;
  int64_t T_ = 0;
  DeviceArray<int32_t> ints_;
  DeviceArray<float> resid_, acts_, out_, A_, zero_bias_, conv_state_, ssm_state_, ssd_scratch_, ssd_bwd_scratch_;
  DeviceArray<float> dresid_, dxn_, dzx_, dxbc_, ddt_, dy_, dyn_, dA_, norm_scratch_, col_scratch_;
  DeviceArray<float> head_x_, head_xn_, head_dxn_, head_dx_, xent_;
  // bf16 mode: dzx (the in_proj backward's operand; dzx_ only exists for an in_proj bias) or, in the head,
  // the logits' gradient; dresid as the out_proj backward's operand; the lm_head weights of this step.
  DeviceArray<uint16_t> grad16_, dresid16_, lm_head16_;
  DeviceArray<uint16_t> xbc16_;  // bf16 training: the forward SSD's x, B, C [T, conv_dim] (empty otherwise)
  DeviceArray<double> sq_scratch_;
};

void CudaTrainBackend::layer_forward(const DevLayer& w, const float* resid_in, float* resid_out, const Acts& a) {
  const int64_t T = T_, d = c_.hidden_size, di = c_.d_inner(), H = c_.num_heads, dpr = c_.d_in_proj(),
                cd = c_.conv_dim();
  const float eps = static_cast<float>(c_.norm_eps);
  cudaStream_t s = stream_;
  timer_.mark("fwd: norm + in_proj", s);
  cuda::rmsnorm(a.xn, gemm_.bf16(), resid_in, w.norm, T, d, eps, s);
  if (a.zx_bf16) {
    gemm_.forward_bf16(static_cast<uint16_t*>(a.zx), act(a.xn), w.in_w, T, dpr, d, s);
  } else {
    gemm_.forward(static_cast<float*>(a.zx), act(a.xn), w.in_w, T, dpr, d, s);
    if (w.in_b) cuda::add_bias(static_cast<float*>(a.zx), dpr, w.in_b, T, dpr, s);
  }
  const int32_t* ints = ints_.get();
  timer_.mark("fwd: conv + dt", s);
  // bf16 training, shapes the bf16 SSD takes: the conv also writes x, B, C in bf16 for the forward SSD's bf16 kernels
  // (the backward recomputes its chunk quantities from the fp32 ones on TF32, as before)
  const bool bf16_ssd = xbc16_.get() != nullptr;
  conv_forward(w, a, bf16_ssd);
  cuda::dt_softplus(a.dt, a.zx_col(di + cd), dpr, w.dt_bias, T, H, static_cast<float>(c_.dt_min),
                    static_cast<float>(c_.dt_max), s, a.zx_bf16);
  cuda::neg_exp(A_.get(), w.A_log, H, s);
  const cuda::SsdDims dims = ssd_dims();
  const int64_t hpn = H * c_.head_dim * c_.state_size;
  timer_.mark("fwd: ssd", s);
  PCM_CUDA(cudaMemsetAsync(ssm_state_.get(), 0, static_cast<size_t>(ix_.S * hpn) * 4, s));
  cuda::SsdIn in{a.xbc, cd, a.dt, A_.get(), w.D};
  if (bf16_ssd) {
    in.xbc_bf16 = xbc16_.get();
    in.bf16_stride = cd;
    in.y_fp32 = !a.y_bf16;
  }
  in.keep_cs = a.cs;
  in.keep_cb = a.cb;
  in.keep_states = a.states;
  cuda::ssd_chunked(a.y, in, ssm_state_.get(), false, hpn, dims, chunk_table(), ints + ix_.seq_slot,
                    static_cast<int32_t>(ix_.S), ssd_scratch_.get(), gemm_.bf16(), s);
  if (!resid_out) return;
  timer_.mark("fwd: gated norm + out_proj", s);
  cuda::gated_rmsnorm(a.yn, gemm_.bf16(), a.y, a.zx, dpr, w.gate_norm, T, di, di / c_.n_groups, eps, s, a.y_bf16,
                      a.zx_bf16);
  // resid_out = resid_in + out_proj(yn) (+ bias)
  gemm_.forward_add(resid_out, resid_in, act(a.yn), w.out_w, T, d, di, s);
  if (w.out_b) cuda::add_bias(resid_out, d, w.out_b, T, d, s);
}

void CudaTrainBackend::conv_forward(const DevLayer& w, const Acts& a, bool bf16_copy) {
  const int64_t di = c_.d_inner(), dpr = c_.d_in_proj(), cd = c_.conv_dim(), K = c_.conv_kernel;
  const int32_t* ints = ints_.get();
  const cuda::PackedSeqs seqs{static_cast<int32_t>(ix_.S), ints + ix_.seq_start, ints + ix_.seq_slot,
                              ints + ix_.row_seq};
  PCM_CUDA(cudaMemsetAsync(conv_state_.get(), 0, static_cast<size_t>(ix_.S * cd * K) * 4, stream_));
  cuda::ConvBf16 conv16;
  if (bf16_copy) conv16 = {xbc16_.get(), cd, 0};
  conv16.in_bf16 = a.zx_bf16;
  cuda::conv1d_silu_prefill(a.xbc, a.zx_col(di), dpr, conv_state_.get(), cd * K, w.conv_w,
                            w.conv_b ? w.conv_b : zero_bias_.get(), T_, cd, K, seqs, stream_, conv16);
}

void CudaTrainBackend::recompute_derived(const DevLayer& w, const Acts& a) {
  timer_.mark("bwd: recompute conv", stream_);
  conv_forward(w, a);
}

void CudaTrainBackend::layer_backward(const DevLayer& w, const DevLayer& g, const float* resid_in, const Acts& a,
                                      uint16_t* dresid16) {
  const int64_t T = T_, d = c_.hidden_size, di = c_.d_inner(), H = c_.num_heads, dpr = c_.d_in_proj(),
                cd = c_.conv_dim(), K = c_.conv_kernel;
  const float eps = static_cast<float>(c_.norm_eps);
  cudaStream_t s = stream_;
  const bool bf16 = gemm_.bf16();
  // d zx: fp32 in fp32 mode or for the in_proj bias's gradient; bf16 (the in_proj backward's operand) in
  // bf16 mode. Its three producers write whichever exist.
  float *dresid = dresid_.get(), *dyn = dyn_.get(), *dy = dy_.get(), *dzx = w.in_b || !bf16 ? dzx_.get() : nullptr,
        *dxbc = dxbc_.get(), *ddt = ddt_.get(), *dxn = dxn_.get(), *nscr = norm_scratch_.get(),
        *scr = col_scratch_.get();
  uint16_t* dzx16 = bf16 ? grad16_.get() : nullptr;
  const cuda::Operand dzx_op = bf16 ? cuda::Operand::bf16(dzx16) : cuda::Operand(dzx);
  // residual += out_proj(yn), yn = gated_rmsnorm(y, z): dz lands in dzx[:, 0:di]. The norm's backward
  // also recomputes yn, which the out_proj weight gradient needs (after it, in between the two products).
  timer_.mark("bwd: out_proj + gated norm", s);
  gemm_.backward(dyn, 0.0f, g.out_w, bf16 ? cuda::Operand::bf16(dresid16) : cuda::Operand(dresid), act(a.yn),
                 w.out_w, T, d, di, s, [&] {
                   cuda::gated_rmsnorm_backward(dy, dzx, dzx16, dpr, g.gate_norm, a.yn, bf16, dyn, a.y, a.zx, dpr,
                                                w.gate_norm, T, di, di / c_.n_groups, eps, nscr, s, a.y_bf16,
                                                a.zx_bf16);
                 });
  if (g.out_b) cuda::column_sum_add(g.out_b, dresid, d, T, d, scr, s);
  // SSD per document from zero state
  timer_.mark("bwd: ssd", s);
  cuda::neg_exp(A_.get(), w.A_log, H, s);
  const int32_t* ints = ints_.get();
  const cuda::SsdTrainIn in{a.xbc, cd, a.dt, A_.get(), w.D, a.cs, a.states, a.cb};
  const cuda::SsdTrainGrads sg{dxbc, cd, ddt, dA_.get(), g.D};
  if (ssd_bwd_ != SsdBackward::kSequential) {
    cuda::ssd_chunked_backward(sg, dy, in, nullptr, nullptr, ssd_dims(), chunk_table(), static_cast<int32_t>(ix_.S), T,
                               ssd_bwd_scratch_.get(), gemm_.bf16(), s, ssd_bwd_ == SsdBackward::kChunkedTc,
                               gemm_.bf16());
  } else {
    cuda::SsdDocs docs;
    docs.count = static_cast<int32_t>(ix_.S);
    docs.chunks = ix_.bwd_chunks;
    docs.begin = ints + ix_.seq_start;
    docs.len = ints + ix_.seq_len;
    docs.chunk0 = ints + ix_.bwd_chunk0;
    cuda::ssd_backward(sg, dy, in, docs, static_cast<int32_t>(H), static_cast<int32_t>(c_.n_groups),
                       static_cast<int32_t>(c_.head_dim), static_cast<int32_t>(c_.state_size), T, kBwdQ,
                       ssd_bwd_scratch_.get(), s);
  }
  cuda::add_product(g.A_log, dA_.get(), A_.get(), H, s);
  // dt = clamp(softplus(raw + dt_bias))
  timer_.mark("bwd: dt + conv", s);
  // (without an fp32 dzx, d raw dt goes to ddt itself, in place, for dt_bias's gradient)
  cuda::dt_softplus_backward(dzx ? dzx + di + cd : ddt, dzx ? dpr : H, dzx16 ? dzx16 + di + cd : nullptr, dpr,
                             g.dt_bias, ddt, a.zx_col(di + cd), dpr, w.dt_bias, T, H, static_cast<float>(c_.dt_min),
                             static_cast<float>(c_.dt_max), scr, s, a.zx_bf16);
  // conv: d xBC (pre-conv) lands in dzx[:, di:di+cd]
  cuda::conv1d_silu_backward(dzx ? dzx + di : nullptr, dzx16 ? dzx16 + di : nullptr, dpr, g.conv_w, g.conv_b, dxbc,
                             a.zx_col(di), dpr, w.conv_w, w.conv_b, ints + ix_.row_doc_begin, T, cd, K, scr, s,
                             a.zx_bf16);
  // zx = in_proj(xn); xn = rmsnorm(resid_in). The norm's backward runs between the two products: it
  // recomputes xn on its way, which the weight gradient needs (no separate recompute of xn).
  timer_.mark("bwd: in_proj + norm", s);
  gemm_.backward(dxn, 0.0f, g.in_w, dzx_op, act(a.xn), w.in_w, T, dpr, d, s, [&] {
    cuda::rmsnorm_backward(dresid, true, dresid16, g.norm, dxn, resid_in, w.norm, T, d, eps, nscr, s, a.xn, bf16);
  });
  if (g.in_b) cuda::column_sum_add(g.in_b, dzx, dpr, T, dpr, scr, s);
}

LossResult CudaTrainBackend::accumulate(const PackedBatch& batch) {
  const int64_t T = batch.rows * batch.seq_len, V = c_.vocab_size, L = c_.num_layers;
  PCM_CHECK(batch.rows >= 0 && batch.seq_len >= 0, "loss_and_grad: negative batch shape");
  PCM_CHECK(static_cast<int64_t>(batch.tokens.size()) == T && static_cast<int64_t>(batch.targets.size()) == T &&
                static_cast<int64_t>(batch.doc_start.size()) == T,
            "loss_and_grad: batch of {} x {} needs {} tokens, targets and doc_start (got {}, {}, {})", batch.rows,
            batch.seq_len, T, batch.tokens.size(), batch.targets.size(), batch.doc_start.size());
  for (int64_t t = 0; t < T; ++t) {
    const int32_t tok = batch.tokens[static_cast<size_t>(t)], tg = batch.targets[static_cast<size_t>(t)];
    PCM_CHECK(tok >= 0 && tok < V, "loss_and_grad: token {} at position {} is outside the vocabulary ({})", tok, t, V);
    PCM_CHECK(tg >= -1 && tg < V, "loss_and_grad: target {} at position {} is outside the vocabulary ({})", tg, t, V);
  }
  if (T == 0) return {0.0, 0};
  apply_pending_scales();  // gradients are added to: they must hold their values
  cudaStream_t s = stream_;
  T_ = T;
  ix_ = index_batch(batch, ssd_q());
  PCM_CUDA(cudaMemcpyAsync(ints_.ensure(static_cast<int64_t>(ix_.host.size())), ix_.host.data(),
                           ix_.host.size() * 4, cudaMemcpyHostToDevice, s));
  const int64_t d = c_.hidden_size, di = c_.d_inner(), H = c_.num_heads, dpr = c_.d_in_proj(), cd = c_.conv_dim(),
                K = c_.conv_kernel, n = ix_.n;
  const bool recompute = opts_.recompute_per_layer;
  const cuda::SsdDims dims = ssd_dims();
  const bool bf16_ssd = gemm_.bf16() && cuda::ssd_bf16_supported(dims, ssd_q());
  const bool keep_states = bf16_ssd && ssd_bwd_ == SsdBackward::kChunkedTc &&
                           cuda::ssd_chunked_backward_takes_saved(dims, static_cast<int32_t>(ssd_q()), true, true);
  const bool zx_bf16 = bf16_ssd && !c_.use_bias;  // the bf16-output GEMM has no bias epilogue
  // With zx in bf16 (and every layer's activations kept), what that frees keeps the conv output per layer instead
  // of recomputing it in the backward (the same 48.4 GB at 1.3B 4 x 2048; recomputing it cost 240.3 against 236.4 ms
  // a step on an H100, with the bf16-input conv kernels: bench/cuda_notes.md).
  const bool keep_xbc = zx_bf16 && !recompute;
  // Offsets (floats, 16-byte aligned) of the parts of one layer's kept set and of the shared set; a part of size 0 is
  // not used.
  auto layout = [](int64_t& total) {
    return [&total](int64_t floats) {
      const int64_t at = total;
      total += (floats + 3) / 4 * 4;
      return at;
    };
  };
  int64_t kept = 0, shared = 0;
  auto kept_part = layout(kept), shared_part = layout(shared);
  const int64_t zx_at = kept_part(zx_bf16 ? (T * dpr + 1) / 2 : T * dpr), dt_at = kept_part(T * H),
                y_at = kept_part(bf16_ssd ? (T * di + 1) / 2 : T * di),
                cs_at = kept_part(keep_states ? ix_.chunks * H * ssd_q() : 0),
                cb_at = kept_part(keep_states ? ix_.chunks * c_.n_groups * ssd_q() * ssd_q() : 0),
                states_at = kept_part(keep_states ? ix_.chunks * H * c_.head_dim * c_.state_size : 0),
                xbc_at = keep_xbc ? kept_part(T * cd) : shared_part(T * cd), xn_at = shared_part(T * d),
                yn_at = shared_part(T * di);
  const int64_t act_sets = recompute ? 1 : L;
  float* resid = resid_.ensure((L + 1) * T * d);
  float* acts = acts_.ensure(act_sets * kept + shared);
  auto acts_of = [&](int64_t l) {
    float *set = acts + (recompute ? 0 : l) * kept, *common = acts + act_sets * kept;
    Acts a;
    a.zx = set + zx_at;
    a.zx_bf16 = zx_bf16;
    a.dt = set + dt_at;
    a.y = set + y_at;
    a.y_bf16 = bf16_ssd;
    if (keep_states) {
      a.cs = set + cs_at;
      a.cb = set + cb_at;
      a.states = set + states_at;
    }
    a.xbc = (keep_xbc ? set : common) + xbc_at;
    a.xn = common + xn_at;
    a.yn = common + yn_at;
    return a;
  };
  A_.ensure(H);
  dA_.ensure(H);
  conv_state_.ensure(ix_.S * cd * K);
  ssm_state_.ensure(ix_.S * H * c_.head_dim * c_.state_size);
  ssd_scratch_.ensure(cuda::ssd_chunked_scratch_floats(ix_.chunks, ssd_q(), dims));
  // bf16 training: the forward SSD's x, B, C in bf16 (one layer at a time)
  if (bf16_ssd) xbc16_.ensure(T * c_.conv_dim());
  const bool bf16 = gemm_.bf16();
  // The head's block of logits [R, V] and (bf16) their gradient live in the SSD backward's scratch, which
  // is idle until the layers' backward.
  const int64_t R = std::min(n, opts_.head_rows), head_grad_off = (R * V + 3) / 4 * 4,
                head_floats = n > 0 ? head_grad_off + (bf16 ? (R * V + 1) / 2 : 0) : 0;
  ssd_bwd_scratch_.ensure(std::max(
      head_floats, ssd_bwd_ != SsdBackward::kSequential
                       ? cuda::ssd_chunked_backward_scratch_floats(T, ix_.chunks, static_cast<int32_t>(ssd_q()), dims,
                                                                   bf16, ssd_bwd_ == SsdBackward::kChunkedTc)
                       : cuda::ssd_backward_scratch_floats(T, ix_.bwd_chunks, ix_.S, kBwdQ, dims.H, dims.G, dims.P,
                                                           dims.N)));
  for (auto* buf : {&dresid_, &dxn_}) buf->ensure(T * d);
  if (!bf16 || c_.use_bias) dzx_.ensure(T * dpr);
  if (bf16) grad16_.ensure(T * dpr);
  dxbc_.ensure(T * cd);
  ddt_.ensure(T * H);
  dy_.ensure(T * di);
  dyn_.ensure(T * di);
  norm_scratch_.ensure(cuda::norm_backward_scratch_floats(T, std::max(d, di)));
  col_scratch_.ensure(std::max({cuda::column_sum_scratch_floats(std::max({dpr, cd, di, d})),
                                cuda::conv1d_backward_scratch_floats(cd, K)}));
  const float eps = static_cast<float>(c_.norm_eps);

  // Forward.
  timer_.mark("embedding", s);
  cuda::embedding_gather(resid, P_.embedding, false, dev_ints(ix_.tokens), T, d, s);
  for (int64_t l = 0; l < L; ++l)
    layer_forward(P_.layers[static_cast<size_t>(l)], resid + l * T * d, resid + (l + 1) * T * d, acts_of(l));

  // Head over the rows with a target: loss, then d loss / d final residual.
  float* dresid = dresid_.get();
  timer_.mark("head: norm + loss + grads", s);
  PCM_CUDA(cudaMemsetAsync(scalars_, 0, sizeof(double), s));
  PCM_CUDA(cudaMemsetAsync(dresid, 0, static_cast<size_t>(T * d) * 4, s));
  if (n > 0) {
    // Blocks of R rows against the whole vocabulary: each logit is computed once, its block's loss and
    // gradient taken from it (vocabulary chunks of all rows needed the logits twice: the log-sum-exp
    // first), for the lm_head gradient accumulated once per block.
    float *hx = head_x_.ensure(n * d), *hxn = head_xn_.ensure(n * d), *hdxn = head_dxn_.ensure(n * d),
          *hdx = head_dx_.ensure(n * d), *logits = ssd_bwd_scratch_.get(), *xe = xent_.ensure(5 * n);
    float *run_max = xe, *run_sum = xe + n, *tgt = xe + 2 * n, *lse = xe + 3 * n, *loss = xe + 4 * n;
    const int32_t* targets = dev_ints(ix_.head_targets);
    cuda::embedding_gather(hx, resid + L * T * d, false, dev_ints(ix_.head_rows), n, d, s);
    cuda::rmsnorm(hxn, bf16, hx, P_.norm_f, n, d, eps, s);
    // bf16 mode: the lm_head rounded once for the three products of each block, the logits' gradient
    // written as bf16 by xent_chunk_grad (after the logits in the scratch).
    uint16_t *lm16 = nullptr, *lg16 = nullptr;
    if (bf16) {
      lm16 = lm_head16_.ensure(V * d);
      cuda::f32_to_bf16_2d(lm16, P_.lm_head, V, d, d, s);
      lg16 = reinterpret_cast<uint16_t*>(logits + head_grad_off);
    }
    const cuda::Operand lm = bf16 ? cuda::Operand::bf16(lm16) : cuda::Operand(P_.lm_head);
    const cuda::Operand dlogits = bf16 ? cuda::Operand::bf16(lg16) : cuda::Operand(logits);
    auto hxn_rows = [&](int64_t r0) {  // rows r0.. of hxn (bf16 in the first half of its slot in bf16 mode)
      return bf16 ? cuda::Operand::bf16(reinterpret_cast<const uint16_t*>(hxn) + r0 * d) : cuda::Operand(hxn + r0 * d);
    };
    cuda::xent_init(run_max, run_sum, tgt, n, s);
    for (int64_t r0 = 0; r0 < n; r0 += R) {
      const int64_t m = std::min(R, n - r0);
      gemm_.run(false, true, m, V, d, hxn_rows(r0), d, lm, d, 0.0f, logits, V, s);
      cuda::xent_chunk_stats(run_max + r0, run_sum + r0, tgt + r0, logits, V, targets + r0, m, 0, V, s);
      cuda::xent_finish(lse + r0, loss + r0, run_max + r0, run_sum + r0, tgt + r0, m, s);
      cuda::xent_chunk_grad(logits, V, lse + r0, targets + r0, m, 0, V, s, lg16);
      gemm_.run(false, false, m, d, V, dlogits, V, lm, d, 0.0f, hdxn + r0 * d, d, s);
      gemm_.run(true, false, V, d, m, dlogits, V, hxn_rows(r0), d, 1.0f, G_.lm_head, d, s);
    }
    cuda::sum_to_double(scalars_, loss, n, s);
    cuda::rmsnorm_backward(hdx, false, nullptr, G_.norm_f, hdxn, hx, P_.norm_f, n, d, eps, norm_scratch_.get(), s);
    cuda::scatter_add_rows(dresid, hdx, dev_ints(ix_.head_rows), n, d, s);
  }
  uint16_t* dresid16 = nullptr;  // the top layer's out_proj backward operand; then rmsnorm_backward's output
  if (bf16) {
    dresid16 = dresid16_.ensure(T * d);
    cuda::f32_to_bf16_2d(dresid16, dresid, T, d, d, s);
  }

  // Backward through the layers.
  for (int64_t l = L - 1; l >= 0; --l) {
    const DevLayer& w = P_.layers[static_cast<size_t>(l)];
    const Acts a = acts_of(l);
    const float* resid_in = resid + l * T * d;
    // Recompute: the same forward again up to the SSD's output, so the activations are bit-identical to
    // the first pass.
    if (recompute)
      layer_forward(w, resid_in, nullptr, a);
    else if (l != L - 1 && !keep_xbc)  // the last layer's derived activations are still those of its forward
      recompute_derived(w, a);
    layer_backward(w, G_.layers[static_cast<size_t>(l)], resid_in, a, dresid16);
  }
  timer_.mark("embedding", s);
  cuda::embedding_backward(G_.embedding, dresid, dev_ints(ix_.emb_uniq), dev_ints(ix_.emb_off),
                           dev_ints(ix_.emb_pos), ix_.uniq, d, s);
  double loss_sum = 0;
  PCM_CUDA(cudaMemcpyAsync(&loss_sum, scalars_, sizeof(double), cudaMemcpyDeviceToHost, s));
  timer_.mark("end", s);
  PCM_CUDA(cudaStreamSynchronize(s));
  if (timer_.on()) timer_.collect();
  size_t free_b = 0, total_b = 0;
  PCM_CUDA(cudaMemGetInfo(&free_b, &total_b));
  peak_bytes_ = std::max(peak_bytes_, static_cast<int64_t>(total_b - free_b));
  return {loss_sum, n};
}

}  // namespace

void require_cuda_train_device() {
  ssd_backward_kind();  // a bad PCM_SSD_BACKWARD is reported first, GPU or not
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    cudaGetLastError();
    fail("device 'cuda': no CUDA GPU is visible on this machine");
  }
}

std::unique_ptr<TrainBackend> make_cuda_train_backend(const Mamba2Config& config, ParamSet& params, AdamWState& opt,
                                                      const TrainBackendOptions& options) {
  return std::make_unique<CudaTrainBackend>(config, params, opt, options);
}

}  // namespace pcm
