// Error checking for CUDA runtime, cuBLAS(Lt) calls and kernel launches: every failure becomes a
// pcm::Error naming the call and the source line (exit code 0 proves nothing on a GPU).
#pragma once
#include <cuda_runtime_api.h>

#include "util/error.h"

#define PCM_CUDA(call)                                                                              \
  do {                                                                                              \
    cudaError_t pcm_err_ = (call);                                                                  \
    if (pcm_err_ != cudaSuccess)                                                                    \
      ::pcm::fail("CUDA error {} ({}) in {} at {}:{}", cudaGetErrorName(pcm_err_),                  \
                  cudaGetErrorString(pcm_err_), #call, __FILE__, __LINE__);                         \
  } while (0)

// After a kernel launch: catches bad launch configurations at once (execution errors surface at
// the next synchronising call, which is checked too).
#define PCM_CUDA_LAUNCH() PCM_CUDA(cudaGetLastError())

namespace pcm::cuda {

// An attribute of the current device (SM count, shared memory per block, ...), checked.
inline int device_attribute(cudaDeviceAttr attr) {
  int dev = 0, value = 0;
  PCM_CUDA(cudaGetDevice(&dev));
  PCM_CUDA(cudaDeviceGetAttribute(&value, attr, dev));
  return value;
}

}  // namespace pcm::cuda
