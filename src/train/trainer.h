// The training driver: phases in order, gradient accumulation to the batch size in tokens, AdamW,
// clipping, NaN/Inf step skipping, metrics JSONL, progress, atomic checkpoints and exact resume.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "train/train_config.h"

namespace pcm {

struct TrainRunOptions {
  std::string resume;          // a checkpoint dir or an output dir (its `latest`); "" = fresh run
  int64_t stop_after_step = 0; // > 0: return after this global step (as if killed right after it)
  bool quiet = false;          // no progress lines
};

struct StepRecord {
  int64_t global_step = 0;
  double loss = 0, lr = 0, grad_norm = 0;
  bool skipped = false;
};

struct TrainRunResult {
  std::vector<StepRecord> steps;  // steps run by this call
  std::string final_checkpoint;
  bool finished = false;          // every phase completed
};

TrainRunResult run_training(const TrainConfig& config, const TrainRunOptions& options);

}  // namespace pcm
