// The parts of engine/cuda_engine.h that need no CUDA: state sizing, and make_cuda_engine in builds
// without CUDA (engine_cuda.cpp is compiled only with it).
#include "engine/cuda_engine.h"

#include "util/error.h"

namespace pcm {

size_t cuda_state_bytes(const Mamba2Config& config, bool bf16_state) {
  return static_cast<size_t>(config.ssm_state_elems()) * (bf16_state ? 2 : 4) +
         static_cast<size_t>(config.conv_state_elems()) * 4;
}

#ifndef PCM_HAVE_CUDA
std::unique_ptr<InferenceEngine> make_cuda_engine(const CudaEngineOptions&) {
  fail("--device cuda: this pcm was built without CUDA");
}
#endif

}  // namespace pcm
