// `--device cuda` for pcm generate, pcm bench and pcm score. Declared in every build; without CUDA the functions
// fail with "built without CUDA".
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/sampler.h"

namespace pcm::cli {

struct CudaGenerateArgs {
  std::string model_dir;
  std::vector<int32_t> prompt;
  int64_t max_new_tokens = 32;
  bool ignore_eos = false;
  SamplingParams sampling;
  std::string state_dtype = "fp32";  // fp32 | bf16
  bool fp32_weights = false;
};
void run_cuda_generate(const CudaGenerateArgs& args);

struct CudaBenchArgs {
  std::string model_dir, shape;
  int64_t layers = 0;
  std::vector<int64_t> batches = {1, 16, 64, 128};
  std::vector<int64_t> prefill_lengths = {4096, 16384};
  int64_t decode_steps = 20;
};
void run_cuda_bench(const CudaBenchArgs& args);

// Logits [T, V] of every position of `ids` (fp32 weights and state: a port-checking tool, like the CPU's
// exact mode), one token per step through the slot.
std::vector<float> run_cuda_score(const std::string& model_dir, const std::vector<int32_t>& ids, int64_t* vocab);

}  // namespace pcm::cli
