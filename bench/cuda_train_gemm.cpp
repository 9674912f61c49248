// The projections of one 1.3B training step (T = 4 x 2048 rows, bf16 operands, fp32 results) one by one:
// the product TrainGemm runs now (cublasGemmEx, cuBLAS's own choice) against every algorithm cuBLASLt's
// heuristic offers for the same product (64 MiB workspace), each the median of 15 timed runs on random
// data. Prints per shape: GemmEx µs and TFLOP/s, the heuristic's first choice, the fastest candidate, and
// whether the fastest candidate's result has the same bits as GemmEx's (a choice that changes the bits
// changes the training run). "out_proj fwd+R" is the residual add out of place (D = X·Wᵀ + R): GemmEx
// with a copy of R first, cuBLASLt reading R as C (what TrainGemm::forward_add does).
// usage: cuda_train_gemm
#include <cstdio>

#ifdef PCM_HAVE_CUDA
#include <cublasLt.h>
#include <fmt/format.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/train_gemm_cuda.h"
#include "util/error.h"

#define BENCH_LT(call)                                                                         \
  do {                                                                                         \
    cublasStatus_t st_ = (call);                                                               \
    if (st_ != CUBLAS_STATUS_SUCCESS) ::pcm::fail("cuBLASLt error {} in {}", static_cast<int>(st_), #call); \
  } while (0)

namespace pcm {
namespace {

constexpr int64_t kT = 8192, kD = 2048, kDi = 4096, kDpr = 8512, kVc = 8192;
constexpr int kRuns = 15;

struct Shape {
  const char* name;
  bool ta, tb;
  int64_t M, N, K;
  float beta;
  bool out_of_place = false;  // D = A·B + C with C != D (the residual add): GemmEx copies C into D first
};

template <class T>
T* dev_alloc(int64_t n) {
  void* p = nullptr;
  PCM_CUDA(cudaMalloc(&p, static_cast<size_t>(n) * sizeof(T)));
  return static_cast<T*>(p);
}

double median_us(cudaStream_t s, const std::function<void()>& run) {
  for (int i = 0; i < 3; ++i) run();
  cudaEvent_t e0, e1;
  PCM_CUDA(cudaEventCreate(&e0));
  PCM_CUDA(cudaEventCreate(&e1));
  std::vector<float> ms;
  for (int i = 0; i < kRuns; ++i) {
    PCM_CUDA(cudaEventRecord(e0, s));
    run();
    PCM_CUDA(cudaEventRecord(e1, s));
    PCM_CUDA(cudaEventSynchronize(e1));
    float m = 0;
    PCM_CUDA(cudaEventElapsedTime(&m, e0, e1));
    ms.push_back(m);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  std::sort(ms.begin(), ms.end());
  return 1e3 * ms[ms.size() / 2];
}

uint32_t cfg(const cublasLtMatmulAlgo_t& a, cublasLtMatmulAlgoConfigAttributes_t attr) {
  uint32_t v = 0;
  size_t w = 0;
  cublasLtMatmulAlgoConfigGetAttribute(&a, attr, &v, sizeof(v), &w);
  return v;
}

std::vector<uint32_t> bits(const float* d, int64_t n) {
  std::vector<uint32_t> h(static_cast<size_t>(n));
  PCM_CUDA(cudaMemcpy(h.data(), d, static_cast<size_t>(n) * 4, cudaMemcpyDeviceToHost));
  return h;
}

void bench_shape(const Shape& sh, cublasLtHandle_t lt, void* ws, size_t ws_bytes, cudaStream_t s) {
  const int64_t M = sh.M, N = sh.N, K = sh.K;
  uint16_t *A = dev_alloc<uint16_t>(M * K), *B = dev_alloc<uint16_t>(K * N);
  float *C = dev_alloc<float>(M * N), *C0 = dev_alloc<float>(M * N);
  cuda::fill_uniform_bf16(A, M * K, 1.0f, 1, s);
  cuda::fill_uniform_bf16(B, K * N, 1.0f, 2, s);
  {
    uint16_t* t = dev_alloc<uint16_t>(M * N);
    cuda::fill_uniform_bf16(t, M * N, 1.0f, 3, s);
    cuda::bf16_to_f32(C0, t, M * N, s);
    PCM_CUDA(cudaStreamSynchronize(s));
    cudaFree(t);
  }
  auto reset = [&] { PCM_CUDA(cudaMemcpyAsync(C, C0, static_cast<size_t>(M * N) * 4, cudaMemcpyDeviceToDevice, s)); };
  const int64_t lda = sh.ta ? M : K, ldb = sh.tb ? K : N;
  // GemmEx through TrainGemm (the training path).
  cuda::TrainGemm tg(true);
  auto gemmex = [&] {
    if (sh.out_of_place) reset();
    tg.run(sh.ta, sh.tb, M, N, K, cuda::Operand::bf16(A), lda, cuda::Operand::bf16(B), ldb, sh.beta, C, N, s);
  };
  const double t_ex = median_us(s, gemmex);
  reset();
  gemmex();
  const std::vector<uint32_t> ref = bits(C, M * N);
  // cuBLASLt, the same column-major mapping as TrainGemm::gemm: Cᵀ[N, M] = op(B)ᵀ · op(A)ᵀ.
  cublasLtMatmulDesc_t desc;
  BENCH_LT(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t opa = sh.tb ? CUBLAS_OP_T : CUBLAS_OP_N, opb = sh.ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  BENCH_LT(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof(opa)));
  BENCH_LT(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof(opb)));
  cublasLtMatrixLayout_t la, lb, lc;  // la: B's storage (col-major rows x cols), lb: A's storage
  BENCH_LT(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, sh.tb ? K : N, sh.tb ? N : K, ldb));
  BENCH_LT(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, sh.ta ? M : K, sh.ta ? K : M, lda));
  BENCH_LT(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, N, M, N));
  cublasLtMatmulPreference_t pref;
  BENCH_LT(cublasLtMatmulPreferenceCreate(&pref));
  BENCH_LT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes,
                                                sizeof(ws_bytes)));
  std::vector<cublasLtMatmulHeuristicResult_t> cand(16);
  int found = 0;
  BENCH_LT(cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, lc, lc, pref, 16, cand.data(), &found));
  const float alpha = 1.0f, beta = sh.beta;
  double best = 1e30, first = 0;
  int best_i = -1;
  std::string line;
  for (int i = 0; i < found; ++i) {
    auto run = [&] {
      BENCH_LT(cublasLtMatmul(lt, desc, &alpha, B, la, A, lb, &beta, sh.out_of_place ? C0 : C, lc, C, lc, &cand[i].algo,
                              ws, ws_bytes, s));
    };
    const double t = median_us(s, run);
    if (i == 0) first = t;
    reset();
    run();
    const bool same = bits(C, M * N) == ref;
    line += fmt::format(" #{}:{:.0f}{}", i, t, same ? "=" : "");
    if (t < best) best = t, best_i = i;
  }
  const double gf = 2.0 * static_cast<double>(M) * N * K * 1e-9;
  const auto& a = cand[static_cast<size_t>(best_i)].algo;
  std::printf("%-14s %5ld x %5ld x %5ld b%.0f | gemmex %6.1f us %4.0f TF/s | lt#0 %6.1f | best lt#%d %6.1f us %4.0f TF/s"
              " (tile %u splitK %u red %u) %+.1f%%\n   all (us, '=' same bits as gemmex):%s\n",
              sh.name, static_cast<long>(M), static_cast<long>(N), static_cast<long>(K), sh.beta, t_ex, gf / t_ex * 1e3,
              first, best_i, best, gf / best * 1e3, cfg(a, CUBLASLT_ALGO_CONFIG_TILE_ID),
              cfg(a, CUBLASLT_ALGO_CONFIG_SPLITK_NUM), cfg(a, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME),
              100.0 * (best - t_ex) / t_ex, line.c_str());
  std::fflush(stdout);
  cublasLtMatmulPreferenceDestroy(pref);
  cublasLtMatrixLayoutDestroy(la);
  cublasLtMatrixLayoutDestroy(lb);
  cublasLtMatrixLayoutDestroy(lc);
  cublasLtMatmulDescDestroy(desc);
  for (void* p : {static_cast<void*>(A), static_cast<void*>(B), static_cast<void*>(C), static_cast<void*>(C0)})
    cudaFree(p);
}

}  // namespace
}  // namespace pcm

int main() {
  using pcm::Shape;
  const Shape shapes[] = {
      {"in_proj fwd", false, true, pcm::kT, pcm::kDpr, pcm::kD, 0.0f},
      {"out_proj fwd", false, true, pcm::kT, pcm::kD, pcm::kDi, 1.0f},
      {"out_proj fwd+R", false, true, pcm::kT, pcm::kD, pcm::kDi, 1.0f, true},
      {"out_proj dX", false, false, pcm::kT, pcm::kDi, pcm::kD, 0.0f},
      {"out_proj dW", true, false, pcm::kD, pcm::kDi, pcm::kT, 1.0f},
      {"in_proj dX", false, false, pcm::kT, pcm::kD, pcm::kDpr, 0.0f},
      {"in_proj dW", true, false, pcm::kDpr, pcm::kD, pcm::kT, 1.0f},
      {"head logits", false, true, pcm::kT, pcm::kVc, pcm::kD, 0.0f},
      {"head dX", false, false, pcm::kT, pcm::kD, pcm::kVc, 1.0f},
      {"head dW", true, false, pcm::kVc, pcm::kD, pcm::kT, 1.0f},
  };
  cudaStream_t s;
  PCM_CUDA(cudaStreamCreate(&s));
  cublasLtHandle_t lt;
  BENCH_LT(cublasLtCreate(&lt));
  const size_t ws_bytes = 64u << 20;
  void* ws = nullptr;
  PCM_CUDA(cudaMalloc(&ws, ws_bytes));
  for (const Shape& sh : shapes) pcm::bench_shape(sh, lt, ws, ws_bytes, s);
  cudaFree(ws);
  cublasLtDestroy(lt);
  return 0;
}
#else
int main() {
  std::printf("built without CUDA\n");
  return 0;
}
#endif
