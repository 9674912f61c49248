// cuBLASLt loaded on first use instead of at process start. Linking libcublasLt (540 MB) made the
// dynamic loader relocate it in every process, about 60 MB of resident pages even for CPU-only commands
// (`pcm inspect`, CPU `generate`, `serve`), which broke the CPU engine's "weights + states + 64 MB"
// memory bound. These definitions satisfy the linker; each forwards to the real function, resolved
// with dlopen/dlsym the first time any of them is called (that is, when `--device cuda` builds a Gemm).
// Add a function here when new code calls one that is not listed (the link fails until then).
#include <cublasLt.h>
#include <dlfcn.h>

#include <mutex>

#include "util/error.h"

namespace {

void* cublaslt_library() {
  static void* handle = nullptr;
  static std::once_flag once;
  std::call_once(once, [] {
    for (const char* name : {"libcublasLt.so.13", "libcublasLt.so"}) {
      handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
      if (handle) break;
    }
    if (!handle)
      pcm::fail("--device cuda needs libcublasLt.so.13 (CUDA 13 cuBLAS), which could not be loaded: {}",
                dlerror());
  });
  return handle;
}

template <typename Fn>
Fn resolve(Fn, const char* name) {
  void* symbol = dlsym(cublaslt_library(), name);
  if (!symbol) pcm::fail("libcublasLt has no symbol {} (a CUDA 13 cuBLAS is required)", name);
  return reinterpret_cast<Fn>(symbol);
}

}  // namespace

// Each forwarder keeps its resolved pointer in a function-local static (thread-safe initialisation).
#define PCM_FORWARD(name, ...)                          \
  static const auto real = resolve(&::name, #name);     \
  return real(__VA_ARGS__)

extern "C" {

cublasStatus_t cublasLtCreate(cublasLtHandle_t* handle) { PCM_FORWARD(cublasLtCreate, handle); }

cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle) { PCM_FORWARD(cublasLtDestroy, handle); }

cublasStatus_t cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void* alpha, const void* A,
                              cublasLtMatrixLayout_t Adesc, const void* B, cublasLtMatrixLayout_t Bdesc,
                              const void* beta, const void* C, cublasLtMatrixLayout_t Cdesc, void* D,
                              cublasLtMatrixLayout_t Ddesc, const cublasLtMatmulAlgo_t* algo, void* workspace,
                              size_t workspace_bytes, cudaStream_t stream) {
  PCM_FORWARD(cublasLtMatmul, handle, desc, alpha, A, Adesc, B, Bdesc, beta, C, Cdesc, D, Ddesc, algo, workspace,
              workspace_bytes, stream);
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                                              cublasLtMatrixLayout_t Adesc, cublasLtMatrixLayout_t Bdesc,
                                              cublasLtMatrixLayout_t Cdesc, cublasLtMatrixLayout_t Ddesc,
                                              cublasLtMatmulPreference_t preference, int requested,
                                              cublasLtMatmulHeuristicResult_t results[], int* returned) {
  PCM_FORWARD(cublasLtMatmulAlgoGetHeuristic, handle, desc, Adesc, Bdesc, Cdesc, Ddesc, preference, requested,
              results, returned);
}

cublasStatus_t cublasLtMatmulAlgoConfigGetAttribute(const cublasLtMatmulAlgo_t* algo,
                                                   cublasLtMatmulAlgoConfigAttributes_t attr, void* buf, size_t bytes,
                                                   size_t* written) {
  PCM_FORWARD(cublasLtMatmulAlgoConfigGetAttribute, algo, attr, buf, bytes, written);
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* desc, cublasComputeType_t compute,
                                        cudaDataType_t scale) {
  PCM_FORWARD(cublasLtMatmulDescCreate, desc, compute, scale);
}

cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc) { PCM_FORWARD(cublasLtMatmulDescDestroy, desc); }

cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr,
                                              const void* buf, size_t bytes) {
  PCM_FORWARD(cublasLtMatmulDescSetAttribute, desc, attr, buf, bytes);
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* pref) {
  PCM_FORWARD(cublasLtMatmulPreferenceCreate, pref);
}

cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) {
  PCM_FORWARD(cublasLtMatmulPreferenceDestroy, pref);
}

cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                    cublasLtMatmulPreferenceAttributes_t attr, const void* buf,
                                                    size_t bytes) {
  PCM_FORWARD(cublasLtMatmulPreferenceSetAttribute, pref, attr, buf, bytes);
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* layout, cudaDataType type, uint64_t rows,
                                          uint64_t cols, int64_t ld) {
  PCM_FORWARD(cublasLtMatrixLayoutCreate, layout, type, rows, cols, ld);
}

cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout) {
  PCM_FORWARD(cublasLtMatrixLayoutDestroy, layout);
}

}  // extern "C"
