// Status checks for cuBLAS and cuBLASLt calls: a failure is a pcm::Error naming the library, the call and
// the place (the cuBLAS twin of PCM_CUDA in cuda_check.h).
#pragma once
#include <cublasLt.h>

#include "util/error.h"

#define PCM_CUBLAS_STATUS(library, call)                                                                          \
  do {                                                                                                            \
    cublasStatus_t pcm_st_ = (call);                                                                              \
    if (pcm_st_ != CUBLAS_STATUS_SUCCESS)                                                                         \
      ::pcm::fail("{} error {} in {} at {}:{}", library, static_cast<int>(pcm_st_), #call, __FILE__, __LINE__); \
  } while (0)
#define PCM_CUBLAS(call) PCM_CUBLAS_STATUS("cuBLAS", call)
#define PCM_CUBLASLT(call) PCM_CUBLAS_STATUS("cuBLASLt", call)
