// CpuEngine: the Scheduler's engine over Mamba2Model on the host. One step is one fused forward (decode
// rows first, then prefill chunks); each slot samples with its own Sampler (mt19937_64 seeded per choice).
#pragma once
#include <optional>
#include <vector>

#include "engine/engine.h"
#include "model/model.h"

namespace pcm {

class CpuEngine : public InferenceEngine {
 public:
  explicit CpuEngine(Mamba2Model& model) : model_(model) {}

  const Mamba2Config& config() const override { return model_.config(); }
  std::string device() const override { return "cpu"; }
  int64_t max_batch_tokens() const override { return model_.max_batch_tokens(); }
  void set_max_batch_tokens(int64_t n) override { model_.set_max_batch_tokens(n); }
  size_t state_bytes() const override;

  void set_slot_count(int64_t n) override;
  int64_t slot_count() const override { return static_cast<int64_t>(slots_.size()); }
  int64_t free_slot_count() const override { return static_cast<int64_t>(free_.size()); }
  int32_t allocate_slot(const SamplingParams& params) override;
  void free_slot(int32_t slot) override;
  void reset_slot(int32_t slot) override;
  void copy_state(int32_t from, int32_t to) override;
  void load_state(int32_t slot, const SequenceState& state) override;
  void store_state(int32_t slot, SequenceState& state) override;
  SequenceState new_host_state() const override { return model_.new_state(); }
  SequenceState* host_state(int32_t slot) override { return &slot_state(slot); }

  void run(const EngineStep& step, EngineOutput& out) override;
  void sample(std::span<const int32_t> slots, std::span<const float* const> logits, int32_t* ids) override;
  void final_hidden(std::span<const int32_t> tokens, SequenceState& state, float* hidden) override {
    model_.final_hidden(tokens, state, hidden);
  }

 private:
  SequenceState& slot_state(int32_t slot);

  Mamba2Model& model_;
  std::vector<SequenceState> slots_;
  std::vector<std::optional<Sampler>> samplers_;
  std::vector<char> used_;
  std::vector<int32_t> free_;  // LIFO, lowest slot on top
  std::vector<int32_t> tokens_;
  std::vector<Segment> segments_;
  std::vector<int64_t> rows_;
  std::vector<float> logits_;
};

}  // namespace pcm
