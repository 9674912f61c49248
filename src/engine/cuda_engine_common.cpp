// The part of engine/cuda_engine.h that needs no CUDA: make_cuda_engine in builds
// without CUDA (engine_cuda.cpp is compiled only with it).
#include "engine/cuda_engine.h"

#include "util/error.h"

namespace pcm {

#ifndef PCM_HAVE_CUDA
std::unique_ptr<InferenceEngine> make_cuda_engine(const CudaEngineOptions&) {
  fail("--device cuda: this pcm was built without CUDA");
}
#endif

}  // namespace pcm
