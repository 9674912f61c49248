// The kernels of a 1.3B training step (T = 4 x 2048 rows) one by one, at the layouts the step uses.
// Row-wise: the gated RMSNorm and RMSNorm (accumulating, with its bf16 copy and xn) backwards, the conv backward, the head's cross-entropy stats and gradient over a
// block of 2048 rows x the whole vocabulary: median µs of 20 runs on random data, and GB/s over the bytes
// each must move (inputs read once, outputs written once).
// Products: each through TrainGemm (tuned at its first use: the fastest of cublasGemmEx and cuBLASLt's
// candidates with GemmEx's bits) against every algorithm cuBLASLt's heuristic offers for it (64 MiB
// workspace), each the median of 15 timed runs: TrainGemm's µs and TFLOP/s, the heuristic's first choice,
// the fastest candidate, and which candidates give TrainGemm's bits ('='). "out_proj fwd+R" is the residual
// add out of place (D = X·Wᵀ + R): TrainGemm's run() after a copy of R, cuBLASLt reading R as C.
// usage: cuda_train_kernels [rowwise|gemm]   (both when omitted)
#include <cstdio>
#include <cstring>

#ifdef PCM_HAVE_CUDA
#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "kernels/cuda/cublas_check.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/train_gemm_cuda.h"
#include "kernels/cuda/train_ops.h"
#include "util/error.h"


namespace pcm {
namespace bench_common {

template <class T>
T* dev_raw(int64_t n) {
  void* p = nullptr;
  PCM_CUDA(cudaMalloc(&p, static_cast<size_t>(n) * sizeof(T)));
  return static_cast<T*>(p);
}

// Median µs of `runs` timed calls of run() on stream s, after 3 untimed ones.
double median_us(cudaStream_t s, int runs, const std::function<void()>& run) {
  for (int i = 0; i < 3; ++i) run();
  cudaEvent_t e0, e1;
  PCM_CUDA(cudaEventCreate(&e0));
  PCM_CUDA(cudaEventCreate(&e1));
  std::vector<float> ms;
  for (int i = 0; i < runs; ++i) {
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

}  // namespace bench_common

namespace rowwise_bench {

constexpr int64_t kT = 8192, kD = 2048, kDi = 4096, kCd = 4352, kDpr = 8512, kV = 50280, kR = 2048;

float* dev_f32(int64_t n, uint64_t seed, float sd = 1.0f) {
  void* p = nullptr;
  void* t = nullptr;
  PCM_CUDA(cudaMalloc(&p, static_cast<size_t>(n) * 4));
  PCM_CUDA(cudaMalloc(&t, static_cast<size_t>(n) * 2));
  cuda::fill_uniform_bf16(static_cast<uint16_t*>(t), n, sd, seed, nullptr);
  cuda::bf16_to_f32(static_cast<float*>(p), static_cast<uint16_t*>(t), n, nullptr);
  PCM_CUDA(cudaDeviceSynchronize());
  cudaFree(t);
  return static_cast<float*>(p);
}
using bench_common::dev_raw;

void report(const char* name, double bytes, const std::function<void()>& run) {
  const double us = bench_common::median_us(nullptr, 20, run);
  std::printf("%-34s %8.1f us %7.0f GB/s (%.0f MB)\n", name, us, bytes / us * 1e-3, bytes * 1e-6);
  std::fflush(stdout);
}

}  // namespace rowwise_bench
}  // namespace pcm

namespace pcm {
namespace gemm_bench {

constexpr int64_t kT = 8192, kD = 2048, kDi = 4096, kDpr = 8512, kVc = 8192;
constexpr int kRuns = 15;

struct Shape {
  const char* name;
  bool ta, tb;
  int64_t M, N, K;
  float beta;
  bool out_of_place = false;  // D = A·B + C with C != D (the residual add): GemmEx copies C into D first
};

using bench_common::dev_raw;

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
  uint16_t *A = dev_raw<uint16_t>(M * K), *B = dev_raw<uint16_t>(K * N);
  float *C = dev_raw<float>(M * N), *C0 = dev_raw<float>(M * N);
  cuda::fill_uniform_bf16(A, M * K, 1.0f, 1, s);
  cuda::fill_uniform_bf16(B, K * N, 1.0f, 2, s);
  {
    uint16_t* t = dev_raw<uint16_t>(M * N);
    cuda::fill_uniform_bf16(t, M * N, 1.0f, 3, s);
    cuda::bf16_to_f32(C0, t, M * N, s);
    PCM_CUDA(cudaStreamSynchronize(s));
    cudaFree(t);
  }
  auto reset = [&] { PCM_CUDA(cudaMemcpyAsync(C, C0, static_cast<size_t>(M * N) * 4, cudaMemcpyDeviceToDevice, s)); };
  const int64_t lda = sh.ta ? M : K, ldb = sh.tb ? K : N;
  // The training path (TrainGemm, tuned at its first use).
  cuda::TrainGemm tg(true);
  auto gemmex = [&] {
    if (sh.out_of_place) reset();
    tg.run(sh.ta, sh.tb, M, N, K, cuda::Operand::bf16(A), lda, cuda::Operand::bf16(B), ldb, sh.beta, C, N, s);
  };
  const double t_ex = bench_common::median_us(s, kRuns, gemmex);
  reset();
  gemmex();
  const std::vector<uint32_t> ref = bits(C, M * N);
  // cuBLASLt, the same column-major mapping as TrainGemm::gemm: Cᵀ[N, M] = op(B)ᵀ · op(A)ᵀ.
  cublasLtMatmulDesc_t desc;
  PCM_CUBLASLT(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t opa = sh.tb ? CUBLAS_OP_T : CUBLAS_OP_N, opb = sh.ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  PCM_CUBLASLT(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof(opa)));
  PCM_CUBLASLT(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof(opb)));
  cublasLtMatrixLayout_t la, lb, lc;  // la: B's storage (col-major rows x cols), lb: A's storage
  PCM_CUBLASLT(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, sh.tb ? K : N, sh.tb ? N : K, ldb));
  PCM_CUBLASLT(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, sh.ta ? M : K, sh.ta ? K : M, lda));
  PCM_CUBLASLT(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, N, M, N));
  cublasLtMatmulPreference_t pref;
  PCM_CUBLASLT(cublasLtMatmulPreferenceCreate(&pref));
  PCM_CUBLASLT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes,
                                                sizeof(ws_bytes)));
  std::vector<cublasLtMatmulHeuristicResult_t> cand(16);
  int found = 0;
  PCM_CUBLASLT(cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, lc, lc, pref, 16, cand.data(), &found));
  const float alpha = 1.0f, beta = sh.beta;
  double best = 1e30, first = 0;
  int best_i = -1;
  std::string line;
  for (int i = 0; i < found; ++i) {
    auto run = [&] {
      PCM_CUBLASLT(cublasLtMatmul(lt, desc, &alpha, B, la, A, lb, &beta, sh.out_of_place ? C0 : C, lc, C, lc, &cand[i].algo,
                              ws, ws_bytes, s));
    };
    const double t = bench_common::median_us(s, kRuns, run);
    if (i == 0) first = t;
    reset();
    run();
    const bool same = bits(C, M * N) == ref;
    line += fmt::format(" #{}:{:.0f}{}", i, t, same ? "=" : "");
    if (t < best) best = t, best_i = i;
  }
  const double gf = 2.0 * static_cast<double>(M) * N * K * 1e-9;
  const auto& a = cand[static_cast<size_t>(best_i)].algo;
  std::printf("%-14s %5ld x %5ld x %5ld b%.0f | train %6.1f us %4.0f TF/s | lt#0 %6.1f | best lt#%d %6.1f us %4.0f TF/s"
              " (tile %u splitK %u red %u) %+.1f%%\n   all (us, '=' same bits as TrainGemm):%s\n",
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

}  // namespace gemm_bench
}  // namespace pcm

static void run_rowwise() {
  using namespace pcm;
  using namespace pcm::rowwise_bench;
  const float eps = 1e-5f;
  // gated RMSNorm backward: dout, y [T, di], z in zx [T, dpr]; dy [T, di], dz16 and yn16
  float *dout = dev_f32(kT * kDi, 1), *y = dev_f32(kT * kDi, 2), *zx = dev_f32(kT * kDpr, 3),
        *w = dev_f32(kDi, 4, 0.3f), *dy = dev_raw<float>(kT * kDi),
        *scr = dev_raw<float>(cuda::norm_backward_scratch_floats(kT, kDi)), *dw = dev_raw<float>(kDi);
  uint16_t *dz16 = dev_raw<uint16_t>(kT * kDpr), *yn16 = dev_raw<uint16_t>(kT * kDi);
  const double gbytes = kT * kDi * (3.0 * 4 + 4 + 2 + 2);
  auto gated = [&] {
    cuda::gated_rmsnorm_backward(dy, nullptr, dz16, kDpr, dw, yn16, true, dout, y, zx, kDpr, w, kT, kDi, kDi, eps, scr,
                                 nullptr);
  };
  report("gated rmsnorm bwd", gbytes, gated);
  // the same with y and z in bf16 (bf16 training since the in_proj output is kept in bf16)
  uint16_t *y16 = dev_raw<uint16_t>(kT * kDi), *zx16 = dev_raw<uint16_t>(kT * kDpr);
  cuda::f32_to_bf16(y16, y, kT * kDi, nullptr);
  cuda::f32_to_bf16(zx16, zx, kT * kDpr, nullptr);
  report("gated rmsnorm bwd (y, z bf16)", kT * kDi * (2.0 * 4 + 2 + 2 + 2 + 2), [&] {
    cuda::gated_rmsnorm_backward(dy, nullptr, dz16, kDpr, dw, yn16, true, dout, y16, zx16, kDpr, w, kT, kDi, kDi, eps,
                                 scr, nullptr, true, true);
  });
  // RMSNorm backward over [T, d], accumulating into dresid with its bf16 copy
  float *x = dev_f32(kT * kD, 5), *dxn = dev_f32(kT * kD, 6), *dres = dev_f32(kT * kD, 7), *wn = dev_f32(kD, 8, 0.3f),
        *dwn = dev_raw<float>(kD);
  uint16_t* dres16 = dev_raw<uint16_t>(kT * kD);
  uint16_t* xn16 = dev_raw<uint16_t>(kT * kD);
  auto rms = [&] { cuda::rmsnorm_backward(dres, true, dres16, dwn, dxn, x, wn, kT, kD, eps, scr, nullptr, xn16, true); };
  report("rmsnorm bwd (+ xn bf16)", kT * kD * (4.0 * 4 + 2 + 2), rms);
  // conv backward: dout [T, cd], input xBC in zx (stride dpr), din16 in dzx16 (stride dpr), 4 documents
  float *dxbc = dev_f32(kT * kCd, 9), *cw = dev_f32(kCd * 4, 10, 0.3f), *cb = dev_f32(kCd, 11, 0.3f),
        *gcw = dev_raw<float>(kCd * 4), *gcb = dev_raw<float>(kCd),
        *cscr = dev_raw<float>(cuda::conv1d_backward_scratch_floats(kCd, 4));
  std::vector<int32_t> begin(kT);
  for (int64_t t = 0; t < kT; ++t) begin[static_cast<size_t>(t)] = static_cast<int32_t>(t / 2048 * 2048);
  int32_t* dbegin = dev_raw<int32_t>(kT);
  PCM_CUDA(cudaMemcpy(dbegin, begin.data(), begin.size() * 4, cudaMemcpyHostToDevice));
  report("conv bwd (K 4, bf16 din)", kT * kCd * (4.0 + 4 + 2), [&] {
    cuda::conv1d_silu_backward(nullptr, dz16 + kDi, kDpr, gcw, gcb, dxbc, zx + kDi, kDpr, cw, cb, dbegin, kT, kCd, 4,
                               cscr, nullptr);
  });
  report("conv bwd (K 4, bf16 in, bf16 din)", kT * kCd * (4.0 + 2 + 2), [&] {
    cuda::conv1d_silu_backward(nullptr, dz16 + kDi, kDpr, gcw, gcb, dxbc, zx16 + kDi, kDpr, cw, cb, dbegin, kT, kCd, 4,
                               cscr, nullptr, true);
  });
  // conv forward of training (4 documents): fp32 / bf16 input (the in_proj output), fp32 output of every column, with
  // and without the bf16 copy of x, B, C (the forward; the backward's recompute)
  std::vector<int32_t> sstart = {0, 2048, 4096, 6144, 8192}, sslot = {0, 1, 2, 3}, srow(kT);
  for (int64_t t = 0; t < kT; ++t) srow[static_cast<size_t>(t)] = static_cast<int32_t>(t / 2048);
  int32_t *dss = dev_raw<int32_t>(5), *dsl = dev_raw<int32_t>(4), *dsr = dev_raw<int32_t>(kT);
  PCM_CUDA(cudaMemcpy(dss, sstart.data(), 5 * 4, cudaMemcpyHostToDevice));
  PCM_CUDA(cudaMemcpy(dsl, sslot.data(), 4 * 4, cudaMemcpyHostToDevice));
  PCM_CUDA(cudaMemcpy(dsr, srow.data(), kT * 4, cudaMemcpyHostToDevice));
  const cuda::PackedSeqs seqs{4, dss, dsl, dsr};
  float *xbc = dev_raw<float>(kT * kCd), *cstate = dev_raw<float>(4 * kCd * 4);
  uint16_t* xbc16 = dev_raw<uint16_t>(kT * kCd);
  for (const bool in16 : {false, true})
    for (const bool copy : {false, true}) {
      cuda::ConvBf16 c16;
      if (copy) c16 = {xbc16, kCd, 0};
      c16.in_bf16 = in16;
      const std::string name =
          fmt::format("conv fwd ({} in, fp32 out{})", in16 ? "bf16" : "fp32", copy ? " + bf16" : "");
      report(name.c_str(), kT * kCd * ((in16 ? 2.0 : 4.0) + 4 + (copy ? 2 : 0)), [&] {
        cuda::conv1d_silu_prefill(xbc, in16 ? static_cast<const void*>(zx16 + kDi) : zx + kDi, kDpr, cstate, kCd * 4,
                                  cw, cb, kT, kCd, 4, seqs, nullptr, c16);
      });
    }
  // cross-entropy over one block of the head: 2048 rows x the whole vocabulary
  float *logits = dev_f32(kR * kV, 12, 3.0f), *xe = dev_raw<float>(5 * kR);
  uint16_t* g16 = dev_raw<uint16_t>(kR * kV);
  std::vector<int32_t> tg(kR);
  for (int64_t i = 0; i < kR; ++i) tg[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7919) % kV);
  int32_t* dtg = dev_raw<int32_t>(kR);
  PCM_CUDA(cudaMemcpy(dtg, tg.data(), tg.size() * 4, cudaMemcpyHostToDevice));
  report("xent stats (2048 x V)", kR * kV * 4.0, [&] {
    cuda::xent_init(xe, xe + kR, xe + 2 * kR, kR, nullptr);
    cuda::xent_chunk_stats(xe, xe + kR, xe + 2 * kR, logits, kV, dtg, kR, 0, kV, nullptr);
  });
  cuda::xent_finish(xe + 3 * kR, xe + 4 * kR, xe, xe + kR, xe + 2 * kR, kR, nullptr);
  report("xent grad bf16 (2048 x V)", kR * kV * 6.0,
         [&] { cuda::xent_chunk_grad(logits, kV, xe + 3 * kR, dtg, kR, 0, kV, nullptr, g16); });
  PCM_CUDA(cudaDeviceSynchronize());
}

static void run_gemms() {
  using pcm::gemm_bench::Shape;
  const Shape shapes[] = {
      {"in_proj fwd", false, true, pcm::gemm_bench::kT, pcm::gemm_bench::kDpr, pcm::gemm_bench::kD, 0.0f},
      {"out_proj fwd", false, true, pcm::gemm_bench::kT, pcm::gemm_bench::kD, pcm::gemm_bench::kDi, 1.0f},
      {"out_proj fwd+R", false, true, pcm::gemm_bench::kT, pcm::gemm_bench::kD, pcm::gemm_bench::kDi, 1.0f, true},
      {"out_proj dX", false, false, pcm::gemm_bench::kT, pcm::gemm_bench::kDi, pcm::gemm_bench::kD, 0.0f},
      {"out_proj dW", true, false, pcm::gemm_bench::kD, pcm::gemm_bench::kDi, pcm::gemm_bench::kT, 1.0f},
      {"in_proj dX", false, false, pcm::gemm_bench::kT, pcm::gemm_bench::kD, pcm::gemm_bench::kDpr, 0.0f},
      {"in_proj dW", true, false, pcm::gemm_bench::kDpr, pcm::gemm_bench::kD, pcm::gemm_bench::kT, 1.0f},
      {"head logits", false, true, pcm::gemm_bench::kT, pcm::gemm_bench::kVc, pcm::gemm_bench::kD, 0.0f},
      {"head dX", false, false, pcm::gemm_bench::kT, pcm::gemm_bench::kD, pcm::gemm_bench::kVc, 1.0f},
      {"head dW", true, false, pcm::gemm_bench::kVc, pcm::gemm_bench::kD, pcm::gemm_bench::kT, 1.0f},
  };
  cudaStream_t s;
  PCM_CUDA(cudaStreamCreate(&s));
  cublasLtHandle_t lt;
  PCM_CUBLASLT(cublasLtCreate(&lt));
  const size_t ws_bytes = 64u << 20;
  void* ws = nullptr;
  PCM_CUDA(cudaMalloc(&ws, ws_bytes));
  for (const Shape& sh : shapes) pcm::gemm_bench::bench_shape(sh, lt, ws, ws_bytes, s);
  cudaFree(ws);
  cublasLtDestroy(lt);
}

int main(int argc, char** argv) {
  const char* what = argc > 1 ? argv[1] : "";
  if (!*what || std::strcmp(what, "rowwise") == 0) run_rowwise();
  if (!*what || std::strcmp(what, "gemm") == 0) run_gemms();
  return 0;
}
#else
int main() {
  std::printf("built without CUDA\n");
  return 0;
}
#endif
