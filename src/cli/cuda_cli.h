// `--device cuda` for pcm generate and pcm bench. Declared in every build; without CUDA the functions
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

}  // namespace pcm::cli
