// Where a CUDA training step spends its time, by section, with CUDA events (PCM_TRAIN_PROFILE=1; off:
// no events, no cost). mark(name) starts a section that lasts until the next mark or finish();
// collect() (after the stream synchronised) adds the elapsed times up per name.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_check.h"

namespace pcm {

class SectionTimer {
 public:
  SectionTimer() : on_(std::getenv("PCM_TRAIN_PROFILE") && *std::getenv("PCM_TRAIN_PROFILE") != '0') {}
  ~SectionTimer() {
    for (cudaEvent_t e : pool_) cudaEventDestroy(e);
  }
  SectionTimer(const SectionTimer&) = delete;
  SectionTimer& operator=(const SectionTimer&) = delete;

  bool on() const { return on_; }
  void mark(const char* name, cudaStream_t s) {
    if (!on_) return;
    if (used_ == pool_.size()) {
      cudaEvent_t e;
      PCM_CUDA(cudaEventCreate(&e));
      pool_.push_back(e);
    }
    PCM_CUDA(cudaEventRecord(pool_[used_], s));
    names_.resize(used_ + 1);
    names_[used_++] = name;
  }
  void collect() {  // the last mark only closes the section before it
    for (size_t i = 0; i + 1 < used_; ++i) {
      float ms = 0;
      PCM_CUDA(cudaEventElapsedTime(&ms, pool_[i], pool_[i + 1]));
      totals_[names_[i]] += ms;
    }
    used_ = 0;
  }
  const std::map<std::string, double>& totals() const { return totals_; }
  void reset() { totals_.clear(); }

 private:
  bool on_;
  std::vector<cudaEvent_t> pool_;
  std::vector<const char*> names_;
  size_t used_ = 0;
  std::map<std::string, double> totals_;
};

}  // namespace pcm
