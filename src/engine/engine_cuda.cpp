// CudaEngine: InferenceEngine over CudaMamba2Model (see engine/cuda_engine.h).
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>

#include "engine/cuda_engine.h"
#include "engine/scheduler.h"
#include "kernels/cuda/cuda_check.h"
#include "model/model_cuda.h"
#include "util/error.h"

namespace pcm {
namespace {

// GPU memory left for graph captures, cuBLASLt workspaces and the CUDA context when the pool is sized
// from free memory.
constexpr double kReserveBytes = 3e9;
constexpr int64_t kMaxDecodeBatch = 256;  // rows per decode graph; larger steps run several graphs

class CudaEngine : public InferenceEngine {
 public:
  CudaEngine(std::unique_ptr<CudaMamba2Model> model) : model_(std::move(model)) {
    budget_ = model_->options().max_batch_tokens;
    params_.assign(static_cast<size_t>(model_->options().max_slots), SamplingParams{});
  }

  const Mamba2Config& config() const override { return model_->config(); }
  std::string device() const override { return "cuda"; }
  int64_t max_batch_tokens() const override { return budget_; }
  void set_max_batch_tokens(int64_t n) override {
    PCM_CHECK(n > 0, "max batch tokens must be > 0");
    // Rounded up to the SSD chunk size as on the CPU, so both engines plan the same chunks; prefill
    // launches larger than the model's workspace are split by the model.
    const int64_t Q = config().chunk_size;
    budget_ = std::max<int64_t>(1, (n + Q - 1) / Q) * Q;
  }
  size_t state_bytes() const override { return model_->state_bytes_per_slot(); }

  void set_slot_count(int64_t n) override {
    PCM_CHECK(n >= 1, "the engine needs at least one slot, got {}", n);
    PCM_CHECK(model_->free_slot_count() == slot_count(), "set_slot_count: {} slots are still allocated",
              slot_count() - model_->free_slot_count());
    if (n == slot_count()) return;
    model_->resize_pool(n, model_->options().bf16_state);
    params_.assign(static_cast<size_t>(n), SamplingParams{});
  }
  int64_t slot_count() const override { return model_->options().max_slots; }
  int64_t free_slot_count() const override { return model_->free_slot_count(); }
  int32_t allocate_slot(const SamplingParams& params) override {
    params.validate();
    const int32_t s = model_->allocate_slot();
    params_[static_cast<size_t>(s)] = params;
    return s;
  }
  void free_slot(int32_t slot) override { model_->free_slot(slot); }
  void reset_slot(int32_t slot) override { model_->reset_slot(slot); }
  void copy_state(int32_t from, int32_t to) override { model_->copy_slot(from, to); }
  void load_state(int32_t slot, const SequenceState& state) override { model_->load_state(slot, state); }
  void store_state(int32_t slot, SequenceState& state) override { model_->store_state(slot, state); }
  SequenceState new_host_state() const override { return SequenceState(config()); }

  void run(const EngineStep& step, EngineOutput& out) override {
    const size_t V = static_cast<size_t>(config().vocab_size);
    out.decode_logits.clear();
    out.prompt_logits.clear();
    out.decode_ids.assign(step.decode.size(), -1);
    if (!step.chunks.empty()) {
      requests_.clear();
      size_t last = 0;
      for (const auto& c : step.chunks) {
        requests_.push_back({c.slot, c.tokens});
        last += c.last ? 1 : 0;
      }
      logits_.resize(step.chunks.size() * V);
      model_->prefill(requests_, last > 0 ? logits_.data() : nullptr);
      for (size_t i = 0; i < step.chunks.size(); ++i)
        if (step.chunks[i].last) out.prompt_logits.push_back(logits_.data() + i * V);
    }
    if (!step.decode.empty()) {
      slots_.clear();
      tokens_.clear();
      step_params_.clear();
      for (const auto& d : step.decode) {
        slots_.push_back(d.slot);
        tokens_.push_back(d.token);
        step_params_.push_back(params_.at(static_cast<size_t>(d.slot)));
      }
      model_->decode(slots_, tokens_, step_params_, out.decode_ids.data());
    }
  }

  void sample(std::span<const int32_t> slots, std::span<const float* const> logits, int32_t* ids) override {
    step_params_.clear();
    for (int32_t s : slots) {
      PCM_CHECK(s >= 0 && s < slot_count(), "state slot {} is not in the pool of {}", s, slot_count());
      step_params_.push_back(params_[static_cast<size_t>(s)]);
    }
    model_->sample_logits(slots, logits, step_params_, ids);
  }

  void final_hidden(std::span<const int32_t>, SequenceState&, float*) override {
    fail("embeddings are computed on the CPU engine only (serve without --device cuda)");
  }

 private:
  std::unique_ptr<CudaMamba2Model> model_;
  int64_t budget_ = 0;
  std::vector<SamplingParams> params_;  // per slot
  std::vector<CudaPrefillRequest> requests_;
  std::vector<float> logits_;
  std::vector<int32_t> slots_, tokens_;
  std::vector<SamplingParams> step_params_;
};

}  // namespace

std::unique_ptr<InferenceEngine> make_cuda_engine(const CudaEngineOptions& o) {
  PCM_CHECK(o.model_dir.empty() != o.shape.empty(), "the CUDA engine needs exactly one of a model directory or a shape");
  PCM_CHECK(o.max_slots >= 0 && o.max_memory_gb >= 0, "--max-slots and --max-memory must be >= 0");
  PCM_CHECK(!(o.max_slots > 0 && o.max_memory_gb > 0), "give --max-slots or --max-memory, not both");
  const Mamba2Config c = o.shape.empty() ? load_mamba2_config(o.model_dir) : named_shape(o.shape, o.shape_layers);
  const size_t state = c.state_bytes(o.bf16_state);
  int64_t slots = o.max_slots;
  if (slots == 0 && o.max_memory_gb > 0)  // no scratch state beside the GPU's slots
    slots = SchedulerConfig::slots_for_memory(o.max_memory_gb * 1e9, state, 0);
  CudaModelOptions mo;
  mo.fp32_weights = o.fp32_weights;
  mo.bf16_state = o.bf16_state;
  mo.max_slots = slots > 0 ? slots : 1;  // sized from free memory below, once the weights are on the device
  mo.max_batch_tokens = o.max_batch_tokens;
  mo.max_decode_batch = std::min<int64_t>(slots > 0 ? slots : kMaxDecodeBatch, kMaxDecodeBatch);
  mo.device = o.device;
  std::unique_ptr<CudaMamba2Model> model;
  if (o.shape.empty()) {
    model = CudaMamba2Model::load(o.model_dir, mo);
  } else {
    PCM_CHECK(!o.fp32_weights, "random weights are drawn in bf16: --fp32-weights needs --model");
    model = CudaMamba2Model::random(c, o.random_seed, mo);
  }
  if (slots == 0) {
    size_t free_b = 0, total_b = 0;
    PCM_CUDA(cudaMemGetInfo(&free_b, &total_b));
    const double usable = static_cast<double>(free_b) + static_cast<double>(state) - kReserveBytes;
    slots = std::clamp<int64_t>(static_cast<int64_t>(usable * 0.95 / static_cast<double>(state)), 1,
                                SchedulerConfig::kMaxSlotsFromMemory);
    model->resize_pool(slots, o.bf16_state);
    std::fprintf(stderr, "cuda: %.1f GB free of %.1f GB after the weights: %lld slots of %.1f MiB\n", free_b / 1e9,
                 total_b / 1e9, static_cast<long long>(slots), static_cast<double>(state) / (1 << 20));
  }
  return std::make_unique<CudaEngine>(std::move(model));
}

}  // namespace pcm
