#include "kernels/cuda/train_gemm_cuda.h"

#include <cublas_v2.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/train_ops.h"
#include "util/error.h"

#define PCM_CUBLAS_V2(call)                                                                              \
  do {                                                                                                  \
    cublasStatus_t pcm_st_ = (call);                                                                    \
    if (pcm_st_ != CUBLAS_STATUS_SUCCESS)                                                               \
      ::pcm::fail("cuBLAS error {} in {} at {}:{}", static_cast<int>(pcm_st_), #call, __FILE__, __LINE__); \
  } while (0)

namespace pcm::cuda {

TrainGemm::TrainGemm(bool bf16) : bf16_(bf16) {
  PCM_CUBLAS_V2(cublasCreate(&handle_));
  PCM_CUBLAS_V2(cublasSetMathMode(handle_, CUBLAS_DEFAULT_MATH));  // fp32 stays fp32: no TF32
}

TrainGemm::~TrainGemm() {
  for (uint16_t* p : scratch_) cudaFree(p);
  cublasDestroy(handle_);
}

const void* TrainGemm::prepare(Operand o, int64_t rows, int64_t cols, int64_t* ld, int which, cudaStream_t s) {
  if (o.is_bf16) {
    PCM_CHECK(bf16_, "TrainGemm: a bf16 operand in fp32 mode");
    return o.p;
  }
  if (!bf16_) return o.p;
  const int64_t n = rows * cols;
  if (n > scratch_cap_[which]) {
    PCM_CUDA(cudaStreamSynchronize(s));
    cudaFree(scratch_[which]);
    PCM_CUDA(cudaMalloc(reinterpret_cast<void**>(&scratch_[which]), static_cast<size_t>(n) * 2));
    scratch_cap_[which] = n;
  }
  f32_to_bf16_2d(scratch_[which], static_cast<const float*>(o.p), rows, cols, *ld, s);
  *ld = cols;
  return scratch_[which];
}

void TrainGemm::run(bool ta, bool tb, int64_t M, int64_t N, int64_t K, Operand A, int64_t lda, Operand B,
                    int64_t ldb, float beta, float* C, int64_t ldc, cudaStream_t s) {
  if (M == 0 || N == 0) return;
  const void* a = prepare(A, ta ? K : M, ta ? M : K, &lda, 0, s);
  const void* b = prepare(B, tb ? N : K, tb ? K : N, &ldb, 1, s);
  gemm(ta, tb, M, N, K, a, lda, b, ldb, beta, C, ldc, s);
}

void TrainGemm::forward_add(float* Y, const float* R, Operand X, Operand W, int64_t T, int64_t n, int64_t k,
                            cudaStream_t s) {
  if (T == 0 || n == 0) return;
  int64_t ldx = k, ldw = k;
  const void* x = prepare(X, T, k, &ldx, 0, s);
  const void* w = prepare(W, n, k, &ldw, 1, s);
  PCM_CHECK(ldx == k && ldw == k, "TrainGemm::forward_add: operands must be contiguous");
  lt_.run(Y, x, w, bf16_, T, n, k, 1.0f, s, R);
}

void TrainGemm::backward(float* dX, float beta, float* dW, Operand dY, Operand X, Operand W, int64_t T, int64_t n,
                         int64_t k, cudaStream_t s, const std::function<void()>& between) {
  if (T == 0) {
    if (between) between();
    return;
  }
  int64_t ldy = n, ldw = k, ldx = k;
  const void* dy = prepare(dY, T, n, &ldy, 0, s);
  gemm(false, false, T, k, n, dy, ldy, prepare(W, n, k, &ldw, 1, s), ldw, beta, dX, k, s);
  if (between) between();  // stream-ordered, and it does not use this object: the prepared dY stays valid
  gemm(true, false, n, k, T, dy, ldy, prepare(X, T, k, &ldx, 1, s), ldx, 1.0f, dW, k, s);
}

// Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ, and a row-major matrix read
// column-major is its transpose: so B goes first, with the same transpose flags.
void TrainGemm::gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void* A, int64_t lda, const void* B,
                     int64_t ldb, float beta, float* C, int64_t ldc, cudaStream_t s) {
  if (M == 0 || N == 0) return;
  PCM_CUBLAS_V2(cublasSetStream(handle_, s));
  const float alpha = 1.0f;
  const cudaDataType_t type = bf16_ ? CUDA_R_16BF : CUDA_R_32F;
  PCM_CUBLAS_V2(cublasGemmEx(handle_, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                             static_cast<int>(N), static_cast<int>(M), static_cast<int>(K), &alpha, B, type,
                             static_cast<int>(ldb), A, type, static_cast<int>(lda), &beta, C, CUDA_R_32F,
                             static_cast<int>(ldc), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

}  // namespace pcm::cuda
