// Prometheus text exposition (format 0.0.4) of the scheduler's counters and the HTTP layer's.
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "engine/scheduler.h"

namespace pcm::server {

// Requests answered, by endpoint and HTTP status.
class HttpCounters {
 public:
  void add(const std::string& endpoint, int status) {
    std::lock_guard lock(mu_);
    ++counts_[{endpoint, status}];
  }
  std::map<std::pair<std::string, int>, int64_t> snapshot() const {
    std::lock_guard lock(mu_);
    return counts_;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> counts_;
};

std::string render_metrics(const SchedulerStats& s, const HttpCounters& http, const std::string& model_name);

}  // namespace pcm::server
