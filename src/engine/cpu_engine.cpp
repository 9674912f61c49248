#include "engine/cpu_engine.h"

#include "util/error.h"

namespace pcm {

size_t CpuEngine::state_bytes() const {
  return slots_.empty() ? model_.new_state().bytes() : slots_.front().bytes();
}

void CpuEngine::set_slot_count(int64_t n) {
  PCM_CHECK(n >= 1, "the engine needs at least one slot, got {}", n);
  PCM_CHECK(free_.size() == slots_.size(), "set_slot_count: {} slots are still allocated", slots_.size() - free_.size());
  slots_.clear();
  slots_.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) slots_.push_back(model_.new_state());
  samplers_.assign(static_cast<size_t>(n), std::nullopt);
  used_.assign(static_cast<size_t>(n), 0);
  free_.clear();
  for (int64_t i = n - 1; i >= 0; --i) free_.push_back(static_cast<int32_t>(i));
}

SequenceState& CpuEngine::slot_state(int32_t slot) {
  PCM_CHECK(slot >= 0 && slot < static_cast<int32_t>(slots_.size()) && used_[static_cast<size_t>(slot)],
            "state slot {} is not allocated (pool of {})", slot, slots_.size());
  return slots_[static_cast<size_t>(slot)];
}

int32_t CpuEngine::allocate_slot(const SamplingParams& params) {
  PCM_CHECK(!free_.empty(), "all {} state slots are in use", slots_.size());
  const int32_t s = free_.back();
  free_.pop_back();
  used_[static_cast<size_t>(s)] = 1;
  samplers_[static_cast<size_t>(s)].emplace(params);
  slots_[static_cast<size_t>(s)].reset();
  return s;
}

void CpuEngine::free_slot(int32_t slot) {
  slot_state(slot);
  used_[static_cast<size_t>(slot)] = 0;
  samplers_[static_cast<size_t>(slot)].reset();
  free_.push_back(slot);
}

void CpuEngine::reset_slot(int32_t slot) { slot_state(slot).reset(); }

void CpuEngine::copy_state(int32_t from, int32_t to) { slot_state(to) = slot_state(from); }

void CpuEngine::load_state(int32_t slot, const SequenceState& state) { slot_state(slot) = state; }

void CpuEngine::store_state(int32_t slot, SequenceState& state) { state = slot_state(slot); }

void CpuEngine::run(const EngineStep& step, EngineOutput& out) {
  const int64_t V = model_.vocab_size();
  tokens_.clear();
  segments_.clear();
  rows_.clear();
  for (const auto& d : step.decode) {
    const int64_t row = static_cast<int64_t>(tokens_.size());
    tokens_.push_back(d.token);
    segments_.push_back(Segment{row, 1, &slot_state(d.slot)});
    rows_.push_back(row);
  }
  for (const auto& c : step.chunks) {
    const int64_t row = static_cast<int64_t>(tokens_.size());
    tokens_.insert(tokens_.end(), c.tokens.begin(), c.tokens.end());
    segments_.push_back(Segment{row, static_cast<int64_t>(c.tokens.size()), &slot_state(c.slot)});
    if (c.last) rows_.push_back(row + static_cast<int64_t>(c.tokens.size()) - 1);
  }
  out.decode_ids.assign(step.decode.size(), -1);
  out.decode_logits.clear();
  out.prompt_logits.clear();
  if (tokens_.empty()) return;
  logits_.resize(rows_.size() * static_cast<size_t>(V));
  model_.forward(tokens_, segments_, rows_, logits_.data());
  for (size_t i = 0; i < rows_.size(); ++i) {
    const float* row = logits_.data() + i * static_cast<size_t>(V);
    (i < step.decode.size() ? out.decode_logits : out.prompt_logits).push_back(row);
  }
  std::vector<int32_t> slots;
  slots.reserve(step.decode.size());
  for (const auto& d : step.decode) slots.push_back(d.slot);
  sample(slots, out.decode_logits, out.decode_ids.data());
}

void CpuEngine::sample(std::span<const int32_t> slots, std::span<const float* const> logits, int32_t* ids) {
  PCM_CHECK(slots.size() == logits.size(), "sample: {} slots for {} logits rows", slots.size(), logits.size());
  for (int32_t s : slots) slot_state(s);
  const int64_t V = model_.vocab_size(), n = static_cast<int64_t>(slots.size());
  // Sampling is independent per slot (own sampler, own logits row) and, with a 32k vocabulary, costs as
  // much as a small model's forward: spread it over the OpenMP threads.
#pragma omp parallel for schedule(dynamic) if (n > 1)
  for (int64_t i = 0; i < n; ++i)
    ids[i] = samplers_[static_cast<size_t>(slots[static_cast<size_t>(i)])]->sample(logits[static_cast<size_t>(i)], V);
}

}  // namespace pcm
