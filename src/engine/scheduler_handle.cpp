// The client side of the scheduler: request handles, latency histograms, slot sizing.
#include <algorithm>
#include <cmath>

#include "engine/scheduler.h"
#include "engine/scheduler_request_state.h"
#include "util/error.h"

namespace pcm {

RequestHandle& RequestHandle::operator=(RequestHandle&& other) noexcept {
  if (this != &other) {
    if (state_ && !finished()) cancel();
    state_ = std::move(other.state_);
  }
  return *this;
}

RequestHandle::~RequestHandle() {
  if (state_ && !finished()) cancel();
}

bool RequestHandle::poll(std::vector<ChoiceEvent>& out, std::chrono::milliseconds timeout) {
  if (!state_) return true;
  std::unique_lock lock(state_->mu);
  state_->cv.wait_for(lock, timeout, [&] { return !state_->events.empty() || state_->done; });
  while (!state_->events.empty()) {
    out.push_back(std::move(state_->events.front()));
    state_->events.pop_front();
  }
  return state_->done;
}

bool RequestHandle::finished() const {
  if (!state_) return true;
  std::lock_guard lock(state_->mu);
  return state_->done;
}

void RequestHandle::cancel() {
  if (state_) state_->cancelled.store(true);
}

RequestUsage RequestHandle::usage() const {
  if (!state_) return {};
  std::lock_guard lock(state_->mu);
  return state_->usage;
}

uint64_t RequestHandle::id() const { return state_ ? state_->id : 0; }

std::string RequestHandle::error() const {
  if (!state_) return "";
  std::lock_guard lock(state_->mu);
  return state_->error;
}

// ---------------------------------------------------------------------------------------------------------
LatencyHistogram::LatencyHistogram(std::vector<double> upper_bounds)
    : bounds(std::move(upper_bounds)), counts(bounds.size() + 1, 0) {}

void LatencyHistogram::observe(double seconds) {
  size_t i = static_cast<size_t>(std::lower_bound(bounds.begin(), bounds.end(), seconds) - bounds.begin());
  ++counts[i];
  sum += seconds;
  ++count;
}

int64_t SchedulerConfig::slots_for_memory(double bytes, size_t state_bytes, int64_t spare_states) {
  PCM_CHECK(std::isfinite(bytes) && bytes > 0, "memory budget must be > 0, got {}", bytes);
  const double n = std::floor(bytes / static_cast<double>(std::max<size_t>(state_bytes, 1))) -
                   static_cast<double>(spare_states);
  PCM_CHECK(n >= 1, "a memory budget of {:.3g} bytes does not hold {} sequence state{} ({} bytes each: one slot{})",
            bytes, spare_states + 1, spare_states > 0 ? "s" : "", state_bytes,
            spare_states > 0 ? " and the embedding scratch state" : "");
  return static_cast<int64_t>(std::min(n, static_cast<double>(kMaxSlotsFromMemory)));
}

}  // namespace pcm
