// Test helper shared by the scheduler tests of both engines: steps a Scheduler on the calling thread until
// every request is finished, collecting each choice's tokens and finish reason.
#pragma once
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "engine/scheduler.h"

namespace pcm::test {

struct Collected {
  std::vector<std::vector<int32_t>> tokens;
  std::vector<std::string> finish;
};

// Steps the scheduler on this thread until every handle is finished.
std::vector<Collected> drive(Scheduler& s, std::vector<RequestHandle>& handles) {
  std::vector<Collected> out(handles.size());
  std::vector<bool> done(handles.size(), false);
  for (int guard = 0; guard < 100000; ++guard) {
    bool all = true;
    for (size_t i = 0; i < handles.size(); ++i) {
      if (done[i]) continue;
      std::vector<ChoiceEvent> ev;
      done[i] = handles[i].poll(ev, std::chrono::milliseconds(0));
      for (auto& e : ev) {
        auto& c = out[i];
        if (c.tokens.size() <= static_cast<size_t>(e.index)) {
          c.tokens.resize(static_cast<size_t>(e.index) + 1);
          c.finish.resize(static_cast<size_t>(e.index) + 1);
        }
        c.tokens[static_cast<size_t>(e.index)].insert(c.tokens[static_cast<size_t>(e.index)].end(), e.tokens.begin(),
                                                       e.tokens.end());
        if (!e.finish_reason.empty()) c.finish[static_cast<size_t>(e.index)] = e.finish_reason;
        EXPECT_NE(e.finish_reason, "error") << handles[i].error();
      }
      all = all && done[i];
    }
    if (all) return out;
    s.step();
  }
  ADD_FAILURE() << "requests did not finish";
  return out;
}

}  // namespace pcm::test
