#include "kernels/cuda/gemm_cuda.h"

#include <cublasLt.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "kernels/cuda/cublas_check.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemm_timing.h"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/train_ops.h"


namespace pcm::cuda {

// One matmul description, its layouts and the algorithm chosen by the heuristic, cached per shape so
// a decode step (and its CUDA-graph capture) only launches.
struct Gemm::Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  std::vector<cublasLtMatmulHeuristicResult_t> candidates;  // the heuristic's order
  size_t chosen = 0;                                         // algo = candidates[chosen] (or a bucket's tuned one)
  bool tune = false;  // the first product of its row bucket: time the candidates before launching
};

// A row bucket's pick (Gemm::Tuned) goes to another row count of the bucket only when that row count's own first
// choice is the bucket's first: the two were checked to give the same bits at the timed row count, and without
// split-K (none of the candidates measured had it) the bits of an algorithm pair do not depend on the row count.
// Where the heuristic's first differs (a split-K choice at another wave count, say) the plan keeps its first: a
// choice by timing must never change a result.
namespace {
static_assert(sizeof(cublasLtMatmulAlgo_t::data) == sizeof(Gemm::Tuned::first), "cublasLtMatmulAlgo_t is 8 words");
bool same_algo(const cublasLtMatmulAlgo_t& a, const std::array<uint64_t, 8>& b) {
  return std::memcmp(a.data, b.data(), sizeof(a.data)) == 0;
}
std::array<uint64_t, 8> words(const cublasLtMatmulAlgo_t& a) {
  std::array<uint64_t, 8> w;
  std::memcpy(w.data(), a.data, sizeof(a.data));
  return w;
}

constexpr int kCandidates = 8;

// An attribute cuBLASLt could not report: never taken for "no split-K" by the rule below.
constexpr uint32_t kUnknownAttribute = 0xffffffffu;

uint32_t config_u32(const cublasLtMatmulAlgo_t& algo, cublasLtMatmulAlgoConfigAttributes_t attr) {
  uint32_t v = 0;  // tile, stages, split-K, reduction, swizzle: 32-bit attributes (16-bit ones zero-extended)
  size_t written = 0;
  if (cublasLtMatmulAlgoConfigGetAttribute(&algo, attr, &v, sizeof(v), &written) != CUBLAS_STATUS_SUCCESS)
    return kUnknownAttribute;
  return v;
}

// Decode-sized products (T <= 256 rows, weights streamed once): the heuristic's first choice is often a
// split-K algorithm with under half a wave of tiles; of its candidates, take the one without split-K with
// the most tiles up to two waves, else its first. H200, decode v10 window 1 (8 candidates each, µs):
// out_proj T=64 23.9 -> 20.6, in_proj T=64 40.9 -> 39.1, T=128 45.1 -> 42.8; out_proj T=16/128 and
// in_proj T=16 keep a choice within 1% of the best.
size_t pick_decode_algorithm(const std::vector<cublasLtMatmulHeuristicResult_t>& c) {
  size_t best = 0;
  float best_waves = -1.0f;
  for (size_t i = 0; i < c.size(); ++i)
    if (config_u32(c[i].algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM) <= 1 && c[i].wavesCount <= 2.0f &&
        c[i].wavesCount > best_waves)
      best = i, best_waves = c[i].wavesCount;
  return best;
}

// Prefill-sized products (codestral-7b on an H200, bench/cuda_prefill_gemm.cpp, 2026-12-04: the heuristic's first
// choice 3.08 / 1.41 ms for in_proj / out_proj at T = 16384, its 6th / 6th candidate 2.97 / 1.36 ms, all 8 with the
// same output bits; at T = 4096 in_proj 0.777 -> 0.759, out_proj's first already the fastest).
constexpr int64_t kTuneRows = 2048;
constexpr int64_t kMaxTuneCopyBytes = 512ll << 20;  // an in-place accumulation's output saved while timing

int rows_log2(int64_t T) {
  int b = 0;
  while ((int64_t{1} << b) < T) ++b;
  return b;
}

}  // namespace

Gemm::Gemm() {
  PCM_CUBLASLT(cublasLtCreate(&handle_));
  workspace_bytes_ = 32u << 20;
  PCM_CUDA(cudaMalloc(&workspace_, workspace_bytes_));
  tune_mode_ = gemm_tune_mode(std::getenv("PCM_GEMM_TUNE"));
}

int gemm_tune_mode(const char* value) {
  if (!value) return 1;
  const std::string v = value;
  PCM_CHECK(v == "0" || v == "1" || v == "2", "PCM_GEMM_TUNE must be 0 (off), 1 (on) or 2 (on, logged), not '{}'",
            v);
  return v[0] - '0';
}

namespace {

void destroy_plans(std::map<std::tuple<bool, int64_t, int64_t, int64_t, bool, bool>, Gemm::Plan*>& plans) {
  for (auto& [key, p] : plans) {
    cublasLtMatrixLayoutDestroy(p->a);
    cublasLtMatrixLayoutDestroy(p->b);
    cublasLtMatrixLayoutDestroy(p->c);
    cublasLtMatmulDescDestroy(p->desc);
    delete p;
  }
  plans.clear();
}

}  // namespace

Gemm::~Gemm() {
  destroy_plans(plans_);
  cudaFree(workspace_);
  cublasLtDestroy(handle_);
}

// Column-major view: Yᵀ [n, T] = W [n, k] · Xᵀ [k, T], where W row-major [n, k] is col-major [k, n]
// transposed, and X row-major [T, k] is col-major [k, T].
Gemm::Plan& Gemm::plan(bool bf16, int64_t T, int64_t n, int64_t k, bool accumulate, bool out_bf16) {
  auto key = std::make_tuple(bf16, T, n, k, accumulate, out_bf16);
  auto it = plans_.find(key);
  if (it != plans_.end()) return *it->second;
  // Prefill sees a new row count per prompt length: bound the cache (a captured graph keeps its own copy
  // of the launch, so dropping plans is safe).
  if (plans_.size() >= 512) destroy_plans(plans_);
  auto* p = new Plan;
  const cudaDataType_t in_type = bf16 ? CUDA_R_16BF : CUDA_R_32F;
  PCM_CUBLASLT(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  PCM_CUBLASLT(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  PCM_CUBLASLT(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  PCM_CUBLASLT(cublasLtMatrixLayoutCreate(&p->a, in_type, static_cast<uint64_t>(k), static_cast<uint64_t>(n), k));
  PCM_CUBLASLT(cublasLtMatrixLayoutCreate(&p->b, in_type, static_cast<uint64_t>(k), static_cast<uint64_t>(T), k));
  PCM_CUBLASLT(cublasLtMatrixLayoutCreate(&p->c, out_bf16 ? CUDA_R_16BF : CUDA_R_32F, static_cast<uint64_t>(n),
                                          static_cast<uint64_t>(T), n));
  cublasLtMatmulPreference_t pref;
  PCM_CUBLASLT(cublasLtMatmulPreferenceCreate(&pref));
  PCM_CUBLASLT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes_,
                                                  sizeof(workspace_bytes_)));
  p->candidates.resize(kCandidates);
  int found = 0;
  PCM_CUBLASLT(cublasLtMatmulAlgoGetHeuristic(handle_, p->desc, p->a, p->b, p->c, p->c, pref, kCandidates,
                                            p->candidates.data(), &found));
  cublasLtMatmulPreferenceDestroy(pref);
  PCM_CHECK(found > 0, "cuBLASLt found no algorithm for a {}x{}x{} {} matmul", T, n, k, bf16 ? "bf16" : "fp32");
  p->candidates.resize(static_cast<size_t>(found));
  p->chosen = bf16 && !out_bf16 && T <= 256 ? pick_decode_algorithm(p->candidates) : 0;
  p->algo = p->candidates[p->chosen].algo;
  if (bf16 && T >= kTuneRows && tune_mode_ > 0) {
    auto t = tuned_.find(std::make_tuple(n, k, accumulate, out_bf16, rows_log2(T)));
    if (t == tuned_.end()) {
      p->tune = true;
    } else if (same_algo(p->candidates[0].algo, t->second.first)) {
      for (size_t i = 0; i < p->candidates.size(); ++i)  // the pick among this row count's candidates
        if (same_algo(p->candidates[i].algo, t->second.pick)) {
          p->chosen = i;
          p->algo = p->candidates[i].algo;
          break;
        }
    }
  }
  plans_[key] = p;
  return *p;
}

void Gemm::launch(const Plan& p, const void* X, const void* W, float beta, const void* C, void* Y, cudaStream_t s) {
  const float alpha = 1.0f;
  PCM_CUBLASLT(cublasLtMatmul(handle_, p.desc, &alpha, W, p.a, X, p.b, &beta, C ? C : Y, p.c, Y, p.c, &p.algo,
                              workspace_, workspace_bytes_, s));
}

// Times the plan's candidates on the call's own operands (an in-place accumulation's output saved and restored
// around each run), keeps the fastest that beats the first by 2% with the first's output bits, for the plan and its
// row bucket. Not inside a stream capture (the decode graphs): the plan then keeps the heuristic's choice.
void Gemm::tune(Plan& p, const void* X, const void* W, int64_t T, int64_t n, int64_t k, float beta, const void* C,
                void* Y, bool out_bf16, cudaStream_t s) {
  p.tune = false;
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  PCM_CUDA(cudaStreamIsCapturing(s, &capture));
  if (capture != cudaStreamCaptureStatusNone) return;
  const size_t bytes = static_cast<size_t>(T * n) * (out_bf16 ? 2 : 4);
  if (bytes % 4) return;  // the digest reads whole 32-bit words: an odd count of bf16 keeps the heuristic's choice
  void* saved = nullptr;  // Y's entry value when Y is also the accumulated C
  if (beta != 0.0f && (!C || C == Y)) {
    if (static_cast<int64_t>(bytes) > kMaxTuneCopyBytes || cudaMallocAsync(&saved, bytes, s) != cudaSuccess) {
      (void)cudaGetLastError();  // no room to time without losing the input: keep the heuristic's choice
      return;
    }
    PCM_CUDA(cudaMemcpyAsync(saved, Y, bytes, cudaMemcpyDeviceToDevice, s));
  }
  auto restore = [&] {
    if (saved) PCM_CUDA(cudaMemcpyAsync(Y, saved, bytes, cudaMemcpyDeviceToDevice, s));
  };
  // The reference is the heuristic's first choice; the candidates are the others.
  const TimedPick t = fastest_same_bits(
      1, static_cast<int>(p.candidates.size()), restore,
      [&](int i) {
        p.algo = p.candidates[static_cast<size_t>(std::max(i, 0))].algo;
        launch(p, X, W, beta, C, Y, s);
      },
      [&] { return bits_digest(static_cast<const float*>(Y), static_cast<int64_t>(bytes / 4), s); }, s);
  const size_t pick = t.index < 0 ? 0 : static_cast<size_t>(t.index);
  restore();  // the caller's launch computes the product from the entry value
  if (saved) PCM_CUDA(cudaFreeAsync(saved, s));
  p.chosen = pick;
  p.algo = p.candidates[pick].algo;
  tuned_[std::make_tuple(n, k, beta != 0.0f, out_bf16, rows_log2(T))] =
      Tuned{words(p.candidates[0].algo), words(p.algo)};
  if (tune_mode_ >= 2)
    std::fprintf(stderr, "gemm %ldx%ldx%ld%s: heuristic's first %.3f ms, chosen #%zu %.3f ms\n",
                 static_cast<long>(T), static_cast<long>(n), static_cast<long>(k), out_bf16 ? " bf16 out" : "",
                 t.ref_ms, pick, t.ms);
}

std::vector<std::string> Gemm::algorithms(bool bf16, int64_t T, int64_t n, int64_t k, bool accumulate, bool out_bf16) {
  std::vector<std::string> out;
  const Plan& p = plan(bf16, T, n, k, accumulate, out_bf16);
  for (size_t i = 0; i < p.candidates.size(); ++i) {
    const auto& a = p.candidates[i].algo;
    out.push_back(fmt::format("tile {} splitK {} red {} waves {:.2f}{}", config_u32(a, CUBLASLT_ALGO_CONFIG_TILE_ID),
                              config_u32(a, CUBLASLT_ALGO_CONFIG_SPLITK_NUM),
                              config_u32(a, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME), p.candidates[i].wavesCount,
                              i == p.chosen ? " (chosen)" : ""));
  }
  return out;
}

void Gemm::use_algorithm(bool bf16, int64_t T, int64_t n, int64_t k, bool accumulate, int index, bool out_bf16) {
  Plan& p = plan(bf16, T, n, k, accumulate, out_bf16);
  PCM_CHECK(index >= 0 && index < static_cast<int>(p.candidates.size()), "cuBLASLt: algorithm {} of {}", index,
            p.candidates.size());
  p.chosen = static_cast<size_t>(index);
  p.algo = p.candidates[p.chosen].algo;
  p.tune = false;  // the benchmark's pick stays
}

void Gemm::run(float* Y, const void* X, const void* W, bool bf16, int64_t T, int64_t n, int64_t k, float beta,
               cudaStream_t s, const float* C) {
  if (T == 0) return;
  if (C && C != Y && beta != 0.0f) {  // out of place: C's rows first when our GEMV would take it
    if (bf16 && gemv_bf16_supported(T, k)) {
      PCM_CUDA(cudaMemcpyAsync(Y, C, static_cast<size_t>(T * n) * 4, cudaMemcpyDeviceToDevice, s));
      C = nullptr;
    }
  } else {
    C = nullptr;
  }
  if (bf16 && gemv_bf16_supported(T, k)) {  // a few rows: stream the weights once with our own kernel
    gemv_bf16(Y, X, W, T, n, k, beta, s);
    return;
  }
  Plan& p = plan(bf16, T, n, k, beta != 0.0f);
  if (p.tune) tune(p, X, W, T, n, k, beta, C, Y, false, s);
  launch(p, X, W, beta, C, Y, s);
}

void Gemm::run_bf16_out(void* Y, const void* X, const void* W, int64_t T, int64_t n, int64_t k, cudaStream_t s) {
  if (T == 0) return;
  Plan& p = plan(true, T, n, k, false, true);
  if (p.tune) tune(p, X, W, T, n, k, 0.0f, nullptr, Y, true, s);
  launch(p, X, W, 0.0f, nullptr, Y, s);
}

}  // namespace pcm::cuda
