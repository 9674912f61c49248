#include "kernels/cuda/train_gemm_cuda.h"

#include <cublasLt.h>
#include <cublas_v2.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "kernels/cuda/cublas_check.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemm_timing.h"
#include "kernels/cuda/train_ops.h"
#include "util/error.h"

namespace pcm::cuda {

struct TrainGemm::LtPlan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  std::vector<cublasLtMatmulAlgo_t> algos;  // the heuristic's candidates, its first choice first
  int chosen = -1;                          // into algos; -1: the reference path
  bool tuned = false;
};

namespace {

constexpr int kCandidates = 8;
constexpr int64_t kMaxInputCopyBytes = 128ll << 20;  // an accumulating product's input kept while timing

}  // namespace

TrainGemm::TrainGemm(bool bf16) : bf16_(bf16) {
  PCM_CUBLAS(cublasCreate(&handle_));
  PCM_CUBLAS(cublasSetMathMode(handle_, CUBLAS_DEFAULT_MATH));  // fp32 stays fp32: no TF32
  if (bf16_) {
    PCM_CUBLASLT(cublasLtCreate(&lt_));
    lt_ws_bytes_ = 64u << 20;
    PCM_CUDA(cudaMalloc(&lt_ws_, lt_ws_bytes_));
    const char* env = std::getenv("PCM_TRAIN_PROFILE");
    log_ = env && std::string(env) == "1";
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

// The column-major mapping of gemmex(): Cᵀ[N, M] = op(B)ᵀ·op(A)ᵀ, B's storage first.
TrainGemm::LtPlan& TrainGemm::lt_plan(bool ta, bool tb, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb,
                                      int64_t ldc, float beta, bool out_of_place) {
  const LtKey key{ta, tb, M, N, K, lda, ldb, ldc, beta != 0.0f, out_of_place};
  auto it = lt_plans_.find(key);
  if (it != lt_plans_.end()) return *it->second;
  auto* p = new LtPlan;
  PCM_CUBLASLT(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t opa = tb ? CUBLAS_OP_T : CUBLAS_OP_N, opb = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  PCM_CUBLASLT(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof(opa)));
  PCM_CUBLASLT(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof(opb)));
  PCM_CUBLASLT(cublasLtMatrixLayoutCreate(&p->a, CUDA_R_16BF, static_cast<uint64_t>(tb ? K : N),
                                           static_cast<uint64_t>(tb ? N : K), ldb));
  PCM_CUBLASLT(cublasLtMatrixLayoutCreate(&p->b, CUDA_R_16BF, static_cast<uint64_t>(ta ? M : K),
                                           static_cast<uint64_t>(ta ? K : M), lda));
  PCM_CUBLASLT(cublasLtMatrixLayoutCreate(&p->c, CUDA_R_32F, static_cast<uint64_t>(N), static_cast<uint64_t>(M), ldc));
  cublasLtMatmulPreference_t pref;
  PCM_CUBLASLT(cublasLtMatmulPreferenceCreate(&pref));
  PCM_CUBLASLT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &lt_ws_bytes_,
                                                     sizeof(lt_ws_bytes_)));
  std::vector<cublasLtMatmulHeuristicResult_t> r(kCandidates);
  int found = 0;
  PCM_CUBLASLT(cublasLtMatmulAlgoGetHeuristic(lt_, p->desc, p->a, p->b, p->c, p->c, pref, kCandidates, r.data(),
                                               &found));
  cublasLtMatmulPreferenceDestroy(pref);
  for (int i = 0; i < found; ++i) p->algos.push_back(r[static_cast<size_t>(i)].algo);
  lt_plans_.emplace(key, p);
  return *p;
}

void TrainGemm::lt_run(const LtPlan& p, int algo, const void* A, const void* B, float beta, const float* C, float* D,
                       cudaStream_t s) {
  const float alpha = 1.0f;
  PCM_CUBLASLT(cublasLtMatmul(lt_, p.desc, &alpha, B, p.a, A, p.b, &beta, C ? C : D, p.c, D, p.c,
                               &p.algos[static_cast<size_t>(algo)], lt_ws_, lt_ws_bytes_, s));
}

void TrainGemm::tune(LtPlan& p, int64_t M, int64_t N, int64_t K, const void* A, const void* B, float beta,
                     const float* C, float* D, bool in_place,
                     const std::function<void(const float*, float*)>& ref, cudaStream_t s) {
  p.tuned = true;
  p.chosen = -1;
  const size_t bytes = static_cast<size_t>(M * N) * 4;
  if (in_place && static_cast<int64_t>(bytes) > kMaxInputCopyBytes) return ref(C, D);
  float* input = nullptr;  // D's entry value (in place: D is also C)
  if (in_place) {
    PCM_CUDA(cudaMalloc(reinterpret_cast<void**>(&input), bytes));
    PCM_CUDA(cudaMemcpyAsync(input, D, bytes, cudaMemcpyDeviceToDevice, s));
  }
  auto restore = [&] {
    if (input) PCM_CUDA(cudaMemcpyAsync(D, input, bytes, cudaMemcpyDeviceToDevice, s));
  };
  // The reference is the cuBLAS product; the candidates are cuBLASLt's algorithms.
  const TimedPick t = fastest_same_bits(
      0, static_cast<int>(p.algos.size()), restore,
      [&](int i) {
        if (i < 0)
          ref(C, D);
        else
          lt_run(p, i, A, B, beta, C, D, s);
      },
      [&] { return bits_digest(D, M * N, s); }, s);
  p.chosen = t.index;
  restore();  // the product's result, by the path chosen
  if (p.chosen < 0)
    ref(C, D);
  else
    lt_run(p, p.chosen, A, B, beta, C, D, s);
  if (log_)
    std::fprintf(stderr, "train gemm %ldx%ldx%ld%s: reference %.1f us, chosen %s %.1f us\n", static_cast<long>(M),
                 static_cast<long>(N), static_cast<long>(K), in_place ? " +=" : C ? " +R" : "", 1e3 * t.ref_ms,
                 p.chosen < 0 ? "reference" : ("lt#" + std::to_string(p.chosen)).c_str(), 1e3 * t.ms);
  PCM_CUDA(cudaStreamSynchronize(s));
  cudaFree(input);
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
  const auto [x, w] = prepare_forward(X, W, T, n, k, s);
  auto ref = [&](const float* c, float* d) { fwd_add_.run(d, x, w, bf16_, T, n, k, 1.0f, s, c); };
  if (!bf16_) return ref(R, Y);
  LtPlan& p = lt_plan(false, true, T, n, k, k, k, n, 1.0f, true);
  if (!p.tuned) return tune(p, T, n, k, x, w, 1.0f, R, Y, false, ref, s);
  if (p.chosen < 0) return ref(R, Y);
  lt_run(p, p.chosen, x, w, 1.0f, R, Y, s);
}

void TrainGemm::forward_bf16(uint16_t* Y, Operand X, Operand W, int64_t T, int64_t n, int64_t k, cudaStream_t s) {
  PCM_CHECK(bf16_, "TrainGemm::forward_bf16 in fp32 mode");
  if (T == 0 || n == 0) return;
  const auto [x, w] = prepare_forward(X, W, T, n, k, s);
  fwd_add_.run_bf16_out(Y, x, w, T, n, k, s);
}

std::pair<const void*, const void*> TrainGemm::prepare_forward(Operand X, Operand W, int64_t T, int64_t n, int64_t k,
                                                              cudaStream_t s) {
  int64_t ldx = k, ldw = k;  // contiguous in, and prepare() keeps them so
  return {prepare(X, T, k, &ldx, 0, s), prepare(W, n, k, &ldw, 1, s)};
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

void TrainGemm::gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void* A, int64_t lda, const void* B,
                     int64_t ldb, float beta, float* C, int64_t ldc, cudaStream_t s) {
  if (M == 0 || N == 0) return;
  if (!bf16_ || ldc != N) return gemmex(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc, s);
  LtPlan& p = lt_plan(ta, tb, M, N, K, lda, ldb, ldc, beta, false);
  if (!p.tuned) {
    auto ref = [&](const float*, float* d) { gemmex(ta, tb, M, N, K, A, lda, B, ldb, beta, d, ldc, s); };
    return tune(p, M, N, K, A, B, beta, nullptr, C, beta != 0.0f, ref, s);
  }
  if (p.chosen < 0) return gemmex(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc, s);
  lt_run(p, p.chosen, A, B, beta, C, C, s);
}

// Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ, and a row-major matrix read
// column-major is its transpose: so B goes first, with the same transpose flags.
void TrainGemm::gemmex(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void* A, int64_t lda, const void* B,
                       int64_t ldb, float beta, float* C, int64_t ldc, cudaStream_t s) {
  PCM_CUBLAS(cublasSetStream(handle_, s));
  const float alpha = 1.0f;
  const cudaDataType_t type = bf16_ ? CUDA_R_16BF : CUDA_R_32F;
  PCM_CUBLAS(cublasGemmEx(handle_, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                             static_cast<int>(N), static_cast<int>(M), static_cast<int>(K), &alpha, B, type,
                             static_cast<int>(ldb), A, type, static_cast<int>(lda), &beta, C, CUDA_R_32F,
                             static_cast<int>(ldc), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

}  // namespace pcm::cuda
