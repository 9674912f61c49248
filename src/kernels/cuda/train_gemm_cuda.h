// The projections of training through cuBLAS, row-major: fp32 (exact, no TF32: the mode the CPU is
// checked against) or bf16 operands with fp32 accumulation and fp32 results. In bf16 mode an fp32
// operand is rounded to bf16 into scratch before each product (as autocast does); producers that can
// write the bf16 operand themselves pass it ready (Operand::bf16), which skips that copy.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>
#include <functional>
#include <map>
#include <tuple>
#include <utility>

#include "kernels/cuda/gemm_cuda.h"

struct cublasContext;
struct cublasLtContext;

namespace pcm::cuda {

// A row-major matrix operand: fp32, or already rounded to bf16 (bf16 mode only).
struct Operand {
  Operand(const float* f) : p(f) {}  // NOLINT: implicit, fp32 is the common case
  static Operand bf16(const uint16_t* b) { return Operand(b, true); }
  const void* p;
  bool is_bf16 = false;

 private:
  Operand(const void* q, bool b) : p(q), is_bf16(b) {}
};

// bf16 products: cublasGemmEx (cuBLAS's own algorithm choice) is the reference; each product shape is timed
// at its first use against cuBLASLt's heuristic candidates, and the fastest candidate whose output has the
// same bits as the reference's is kept, so the choice never changes a result (H200, 1.3B step: in_proj
// forward 396 -> 358 us, out_proj forward with the residual 220 -> 195, out_proj dX 194 -> 181). An
// accumulating product keeps a copy of its input while it is timed (at most 128 MB, else it stays on the
// reference). fp32: GemmEx, exact.
class TrainGemm {
 public:
  explicit TrainGemm(bool bf16);
  ~TrainGemm();
  TrainGemm(const TrainGemm&) = delete;
  TrainGemm& operator=(const TrainGemm&) = delete;

  bool bf16() const { return bf16_; }
  // C[M, N] = op(A)·op(B) + beta·C, op(A) [M, K] (A stored [M, K], or [K, M] when ta), op(B) [K, N] (B stored
  // [K, N], or [N, K] when tb); lda/ldb/ldc are row strides (of a bf16 operand: its own, in elements).
  void run(bool ta, bool tb, int64_t M, int64_t N, int64_t K, Operand A, int64_t lda, Operand B, int64_t ldb,
           float beta, float* C, int64_t ldc, cudaStream_t s);
  // Y[T, n] = X[T, k]·W[n, k]ᵀ.
  void forward(float* Y, Operand X, Operand W, int64_t T, int64_t n, int64_t k, cudaStream_t s) {
    run(false, true, T, n, k, X, k, W, k, 0.0f, Y, n, s);
  }
  // Y[T, n] in bf16 = X[T, k]·W[n, k]ᵀ (bf16 mode only): the in_proj output that only bf16 consumers read (conv,
  // dt, gated norm and their backwards), as autocast's Linear output; cuBLASLt, tuned as Gemm::run_bf16_out.
  void forward_bf16(uint16_t* Y, Operand X, Operand W, int64_t T, int64_t n, int64_t k, cudaStream_t s);
  // Y[T, n] = R[T, n] + X[T, k]·W[n, k]ᵀ: the residual add in the product's epilogue (cuBLASLt reads C = R
  // and writes D = Y), no copy of R first.
  void forward_add(float* Y, const float* R, Operand X, Operand W, int64_t T, int64_t n, int64_t k, cudaStream_t s);
  // Both products of a projection's backward, dX[T, k] (+)= dY[T, n]·W[n, k] then dW[n, k] += dY[T, n]ᵀ·X[T, k],
  // with dY rounded to bf16 once for the two. `between` (may be empty) is enqueued after dX and before dW:
  // work that needs dX and produces X (the gated norm's backward recomputes the out_proj input on its way).
  void backward(float* dX, float beta, float* dW, Operand dY, Operand X, Operand W, int64_t T, int64_t n, int64_t k,
                cudaStream_t s, const std::function<void()>& between = {});

 private:
  struct LtPlan;
  using LtKey = std::tuple<bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool>;
  // The product on prepared operands (bf16 in bf16 mode, the fp32 inputs otherwise), C in place.
  void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void* A, int64_t lda, const void* B,
            int64_t ldb, float beta, float* C, int64_t ldc, cudaStream_t s);
  void gemmex(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void* A, int64_t lda, const void* B,
              int64_t ldb, float beta, float* C, int64_t ldc, cudaStream_t s);
  // The operand as the product wants it: itself, or (fp32 in bf16 mode) rounded into scratch `which`;
  // *ld becomes the prepared matrix's row stride.
  const void* prepare(Operand o, int64_t rows, int64_t cols, int64_t* ld, int which, cudaStream_t s);
  // X [T, k] and W [n, k] (contiguous) prepared (scratch 0 and 1) for Y = X·Wᵀ.
  std::pair<const void*, const void*> prepare_forward(Operand X, Operand W, int64_t T, int64_t n, int64_t k,
                                                      cudaStream_t s);
  // cuBLASLt: the plan of D = op(A)·op(B) + beta·C (row-major as gemm(); out_of_place: C != D), and one run
  // of its candidate `algo`.
  LtPlan& lt_plan(bool ta, bool tb, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb, int64_t ldc,
                  float beta, bool out_of_place);
  void lt_run(const LtPlan& p, int algo, const void* A, const void* B, float beta, const float* C, float* D,
              cudaStream_t s);
  // A plan's first use: `ref(C, D)` (the reference path) and each candidate timed on the real output D
  // (restored from a copy in between when in_place: D is also the input), candidates with other bits
  // dropped; D ends with the product's result.
  void tune(LtPlan& p, int64_t M, int64_t N, int64_t K, const void* A, const void* B, float beta, const float* C,
            float* D, bool in_place, const std::function<void(const float*, float*)>& ref, cudaStream_t s);
  bool bf16_;
  bool log_ = false;  // PCM_TRAIN_PROFILE: each tuned shape's choice on stderr
  cublasLtContext* lt_ = nullptr;
  void* lt_ws_ = nullptr;
  size_t lt_ws_bytes_ = 0;
  std::map<LtKey, LtPlan*> lt_plans_;
  cublasContext* handle_ = nullptr;
  Gemm fwd_add_;  // forward_add's reference (cuBLASLt's first choice with C != D) and forward_bf16
  uint16_t* scratch_[2] = {nullptr, nullptr};
  int64_t scratch_cap_[2] = {0, 0};
};

}  // namespace pcm::cuda
