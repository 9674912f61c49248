// pcm bench --train: time full training steps (forward, backward, norm, AdamW) of a named shape on
// random weights and random tokens, on the CPU or one CUDA GPU.
#pragma once
#include <cstdint>
#include <string>

namespace pcm::cli {

struct TrainBenchArgs {
  std::string shape, device = "cuda", precision = "bf16";
  int64_t layers = 0, seq_len = 2048, batch = 4, steps = 5;
  bool recompute = false;
};
void run_train_bench(const TrainBenchArgs& args);

}  // namespace pcm::cli
