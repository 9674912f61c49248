// cuBLASLt projections: Y[T, n] (fp32, row-major) = X[T, k] · W[n, k]ᵀ (+ beta · Y), X and W both bf16
// (fp32 accumulation) or both fp32 (true fp32, no TF32). beta = 1 fuses the residual add.
// Prefill-sized bf16 products (T >= 2048 rows) time the heuristic's candidates at the first product of each
// power-of-two row bucket and keep the fastest whose output has the first choice's bits (so the choice never changes
// a result), then reuse it for the bucket's row counts whose heuristic first choice is the same algorithm;
// PCM_GEMM_TUNE=0 turns that off, =2 logs each choice.
#pragma once
#include <cuda_runtime_api.h>

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

struct cublasLtContext;

namespace pcm::cuda {

// PCM_GEMM_TUNE's value (null: unset): 0 off, 1 on (the default), 2 on with a line per tuned shape on stderr;
// anything else is an error naming the variable.
int gemm_tune_mode(const char* value);

class Gemm {
 public:
  Gemm();
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;
  // C (null = Y) is the matrix beta scales: Y = X·Wᵀ + beta·C out of place (training's residual add).
  void run(float* Y, const void* X, const void* W, bool bf16, int64_t T, int64_t n, int64_t k, float beta,
           cudaStream_t s, const float* C = nullptr);
  // Y[T, n] in bf16 (row-major) = X[T, k] · W[n, k]ᵀ, both bf16, fp32 accumulation, on cuBLASLt at any T: the
  // prefill's in_proj for the bf16 consumers after it (conv, dt, gated norm).
  void run_bf16_out(void* Y, const void* X, const void* W, int64_t T, int64_t n, int64_t k, cudaStream_t s);

  // Benchmarks: the heuristic's first algorithms for one shape (one line each: tile, split-K, waves), and
  // which of them run() takes for that shape from now on (by default the heuristic's first choice, or for
  // decode-sized bf16 products the rule in gemm_cuda.cpp).
  std::vector<std::string> algorithms(bool bf16, int64_t T, int64_t n, int64_t k, bool accumulate, bool out_bf16 = false);
  void use_algorithm(bool bf16, int64_t T, int64_t n, int64_t k, bool accumulate, int index, bool out_bf16 = false);

  struct Plan;
  // What a row bucket's first product found by timing (cublasLtMatmulAlgo_t's 8 words each): the heuristic's first
  // choice there and the pick (the same when none beat it).
  struct Tuned {
    std::array<uint64_t, 8> first{}, pick{};
  };

 private:
  Plan& plan(bool bf16, int64_t T, int64_t n, int64_t k, bool accumulate, bool out_bf16 = false);
  void launch(const Plan& p, const void* X, const void* W, float beta, const void* C, void* Y, cudaStream_t s);
  void tune(Plan& p, const void* X, const void* W, int64_t T, int64_t n, int64_t k, float beta, const void* C,
            void* Y, bool out_bf16, cudaStream_t s);
  cublasLtContext* handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  int tune_mode_ = 1;  // PCM_GEMM_TUNE: 0 off, 1 on, 2 on with a line per tuned shape on stderr
  std::map<std::tuple<bool, int64_t, int64_t, int64_t, bool, bool>, Plan*> plans_;
  std::map<std::tuple<int64_t, int64_t, bool, bool, int>, Tuned> tuned_;  // (n, k, accumulate, out_bf16, rows' log2)
};

}  // namespace pcm::cuda
