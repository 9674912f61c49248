// cuBLAS (the v2 API, used by training's projections in train_gemm_cuda.cpp) loaded on first use, like
// cuBLASLt in cublaslt_loader_cuda.cpp: linking it would map the library into every process, CPU-only
// commands included. Each definition forwards to the real function, resolved with dlopen/dlsym the first
// time any of them is called (when `pcm train --device cuda` builds its TrainGemm). Add a function here
// when new code calls one that is not listed (the link fails until then).
#include <cublas_v2.h>
#include <dlfcn.h>

#include <mutex>

#include "util/error.h"

namespace {

void* cublas_library() {
  static void* handle = nullptr;
  static std::once_flag once;
  std::call_once(once, [] {
    for (const char* name : {"libcublas.so.13", "libcublas.so"}) {
      handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
      if (handle) break;
    }
    if (!handle)
      pcm::fail("CUDA training needs libcublas.so.13 (CUDA 13 cuBLAS), which could not be loaded: {}", dlerror());
  });
  return handle;
}

template <typename Fn>
Fn resolve(const char* name) {
  void* symbol = dlsym(cublas_library(), name);
  if (!symbol) pcm::fail("libcublas has no symbol {} (a CUDA 13 cuBLAS is required)", name);
  return reinterpret_cast<Fn>(symbol);
}

using CreateFn = cublasStatus_t (*)(cublasHandle_t*);
using DestroyFn = cublasStatus_t (*)(cublasHandle_t);
using SetStreamFn = cublasStatus_t (*)(cublasHandle_t, cudaStream_t);
using SetMathModeFn = cublasStatus_t (*)(cublasHandle_t, cublasMath_t);
using GemmExFn = cublasStatus_t (*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*,
                                    const void*, cudaDataType, int, const void*, cudaDataType, int, const void*, void*,
                                    cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);

}  // namespace

extern "C" {

cublasStatus_t cublasCreate_v2(cublasHandle_t* handle) {
  static const auto real = resolve<CreateFn>("cublasCreate_v2");
  return real(handle);
}

cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
  static const auto real = resolve<DestroyFn>("cublasDestroy_v2");
  return real(handle);
}

cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t stream) {
  static const auto real = resolve<SetStreamFn>("cublasSetStream_v2");
  return real(handle, stream);
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  static const auto real = resolve<SetMathModeFn>("cublasSetMathMode");
  return real(handle, mode);
}

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                            int k, const void* alpha, const void* A, cudaDataType Atype, int lda, const void* B,
                            cudaDataType Btype, int ldb, const void* beta, void* C, cudaDataType Ctype, int ldc,
                            cublasComputeType_t computeType, cublasGemmAlgo_t algo) {
  static const auto real = resolve<GemmExFn>("cublasGemmEx");
  return real(handle, transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta, C, Ctype, ldc, computeType,
              algo);
}

}  // extern "C"
