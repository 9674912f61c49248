#include "kernels/cuda/train_gemm_cuda.h"

#include <cublasLt.h>
#include <cublas_v2.h>

#include <cstdlib>
#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/train_ops.h"
#include "util/error.h"

#define PCM_CUBLAS_V2(call)                                                                              \
  do {                                                                                                  \
    cublasStatus_t pcm_st_ = (call);                                                                    \
    if (pcm_st_ != CUBLAS_STATUS_SUCCESS)                                                               \
      ::pcm::fail("cuBLAS error {} in {} at {}:{}", static_cast<int>(pcm_st_), #call, __FILE__, __LINE__); \
  } while (0)

#define PCM_CUBLAS_LT(call)                                                                                \
  do {                                                                                                    \
    cublasStatus_t pcm_st_ = (call);                                                                      \
    if (pcm_st_ != CUBLAS_STATUS_SUCCESS)                                                                 \
      ::pcm::fail("cuBLASLt error {} in {} at {}:{}", static_cast<int>(pcm_st_), #call, __FILE__, __LINE__); \
  } while (0)

namespace pcm::cuda {

struct TrainGemm::LtPlan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
};

namespace {

// PCM_TRAIN_GEMM, read before any member starts cuBLAS (a bad value is reported first, GPU or not).
bool lt_from_env(bool bf16) {
  const char* env = std::getenv("PCM_TRAIN_GEMM");
  const std::string v = env ? env : "";
  PCM_CHECK(v.empty() || v == "gemmex" || v == "lt", "PCM_TRAIN_GEMM must be 'gemmex' or 'lt', got '{}'", v);
  return bf16 && v == "lt";
}

}  // namespace

TrainGemm::TrainGemm(bool bf16) : bf16_(bf16), use_lt_(lt_from_env(bf16)) {
  PCM_CUBLAS_V2(cublasCreate(&handle_));
  PCM_CUBLAS_V2(cublasSetMathMode(handle_, CUBLAS_DEFAULT_MATH));  // fp32 stays fp32: no TF32
  if (use_lt_) {
    PCM_CUBLAS_LT(cublasLtCreate(&lt_));
    lt_ws_bytes_ = 64u << 20;
    PCM_CUDA(cudaMalloc(&lt_ws_, lt_ws_bytes_));
  }
}

TrainGemm::~TrainGemm() {
  for (auto& [key, p] : lt_plans_) {
    cublasLtMatrixLayoutDestroy(p->a);
    cublasLtMatrixLayoutDestroy(p->b);
    cublasLtMatrixLayoutDestroy(p->c);
    cublasLtMatmulDescDestroy(p->desc);
    delete p;
  }
  if (lt_) {
    cudaFree(lt_ws_);
    cublasLtDestroy(lt_);
  }
  for (uint16_t* p : scratch_) cudaFree(p);
  cublasDestroy(handle_);
}

// The column-major mapping of gemm() below: Cᵀ[N, M] = op(B)ᵀ·op(A)ᵀ, B's storage first.
void TrainGemm::lt_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void* A, int64_t lda, const void* B,
                        int64_t ldb, float beta, const float* C, float* D, int64_t ldc, cudaStream_t s) {
  const LtKey key{ta, tb, M, N, K, lda, ldb, ldc, beta != 0.0f};
  auto it = lt_plans_.find(key);
  if (it == lt_plans_.end()) {
    auto* p = new LtPlan;
    PCM_CUBLAS_LT(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t opa = tb ? CUBLAS_OP_T : CUBLAS_OP_N, opb = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    PCM_CUBLAS_LT(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof(opa)));
    PCM_CUBLAS_LT(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof(opb)));
    PCM_CUBLAS_LT(cublasLtMatrixLayoutCreate(&p->a, CUDA_R_16BF, static_cast<uint64_t>(tb ? K : N),
                                             static_cast<uint64_t>(tb ? N : K), ldb));
    PCM_CUBLAS_LT(cublasLtMatrixLayoutCreate(&p->b, CUDA_R_16BF, static_cast<uint64_t>(ta ? M : K),
                                             static_cast<uint64_t>(ta ? K : M), lda));
    PCM_CUBLAS_LT(cublasLtMatrixLayoutCreate(&p->c, CUDA_R_32F, static_cast<uint64_t>(N), static_cast<uint64_t>(M),
                                             ldc));
    cublasLtMatmulPreference_t pref;
    PCM_CUBLAS_LT(cublasLtMatmulPreferenceCreate(&pref));
    PCM_CUBLAS_LT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &lt_ws_bytes_,
                                                       sizeof(lt_ws_bytes_)));
    cublasLtMatmulHeuristicResult_t r{};
    int found = 0;
    PCM_CUBLAS_LT(cublasLtMatmulAlgoGetHeuristic(lt_, p->desc, p->a, p->b, p->c, p->c, pref, 1, &r, &found));
    cublasLtMatmulPreferenceDestroy(pref);
    PCM_CHECK(found > 0, "cuBLASLt found no algorithm for a {}x{}x{} bf16 product", M, N, K);
    p->algo = r.algo;
    it = lt_plans_.emplace(key, p).first;
  }
  const LtPlan& p = *it->second;
  const float alpha = 1.0f;
  PCM_CUBLAS_LT(cublasLtMatmul(lt_, p.desc, &alpha, B, p.a, A, p.b, &beta, C ? C : D, p.c, D, p.c, &p.algo, lt_ws_,
                               lt_ws_bytes_, s));
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
  if (use_lt_)
    lt_gemm(false, true, T, n, k, x, k, w, k, 1.0f, R, Y, n, s);
  else
    fwd_add_.run(Y, x, w, bf16_, T, n, k, 1.0f, s, R);
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
  if (use_lt_) return lt_gemm(ta, tb, M, N, K, A, lda, B, ldb, beta, nullptr, C, ldc, s);
  PCM_CUBLAS_V2(cublasSetStream(handle_, s));
  const float alpha = 1.0f;
  const cudaDataType_t type = bf16_ ? CUDA_R_16BF : CUDA_R_32F;
  PCM_CUBLAS_V2(cublasGemmEx(handle_, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                             static_cast<int>(N), static_cast<int>(M), static_cast<int>(K), &alpha, B, type,
                             static_cast<int>(ldb), A, type, static_cast<int>(lda), &beta, C, CUDA_R_32F,
                             static_cast<int>(ldc), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

}  // namespace pcm::cuda
