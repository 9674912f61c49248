// RequestState: what one request shares between the engine thread (producer of events) and its client
// (consumer, through RequestHandle). Private to the scheduler's implementation files.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>

#include "engine/scheduler.h"

namespace pcm {

using SchedulerClock = std::chrono::steady_clock;

// The state one request shares between the engine thread (producer) and its client (consumer).
struct RequestState {
  uint64_t id = 0;
  GenerationRequest req;
  SchedulerClock::time_point submitted;
  std::atomic<bool> cancelled{false};

  mutable std::mutex mu;
  std::condition_variable cv;
  std::deque<ChoiceEvent> events;
  int64_t choices_done = 0;
  bool done = false;
  RequestUsage usage;
  std::string error;

  // Engine side: appends text/tokens to the newest pending event of the same choice when it has not
  // been taken yet, so a slow reader gets one merged event instead of one per token.
  void push(ChoiceEvent ev, bool finished_choice) {
    {
      std::lock_guard lock(mu);
      usage.completion_tokens += static_cast<int64_t>(ev.tokens.size());
      if (!events.empty() && events.back().index == ev.index && events.back().finish_reason.empty()) {
        ChoiceEvent& last = events.back();
        last.text += ev.text;
        last.tokens.insert(last.tokens.end(), ev.tokens.begin(), ev.tokens.end());
        last.finish_reason = std::move(ev.finish_reason);
      } else {
        events.push_back(std::move(ev));
      }
      if (finished_choice && ++choices_done == req.n) done = true;
    }
    cv.notify_all();
  }
};

}  // namespace pcm
