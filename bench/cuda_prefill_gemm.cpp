// The prefill's projections at Mamba-Codestral-7B's shape through cuBLASLt, each of the heuristic's candidate
// algorithms timed (median of 3 runs after one untimed, CUDA events; gemm_timing.h) at T = 4096 and 16384 rows: in_proj with its
// bf16 output (n = 18560, k = 4096) and out_proj accumulating into the fp32 residual (n = 4096, k = 8192), in
// TFLOP/s, and whether each candidate's output has the first choice's bits (a choice by timing may only take
// those: results must not depend on which algorithm won). Answers whether timing the candidates at first use
// would beat the heuristic's first choice (training's products do that: train_gemm_cuda.cpp).
// usage: cuda_prefill_gemm
#include <cstdio>

#ifdef PCM_HAVE_CUDA
#include <cuda_runtime_api.h>

#include <string>
#include <vector>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemm_cuda.h"
#include "kernels/cuda/gemm_timing.h"
#include "kernels/cuda/ops.h"

namespace pcm {
namespace {

constexpr int64_t kD = 4096, kDi = 8192, kDpr = 2 * kDi + 2 * 8 * 128 + 128;

template <class T>
T* dev_alloc(int64_t n) {
  void* p = nullptr;
  PCM_CUDA(cudaMalloc(&p, static_cast<size_t>(n) * sizeof(T)));
  return static_cast<T*>(p);
}

std::vector<unsigned char> download(const void* p, size_t bytes) {
  std::vector<unsigned char> h(bytes);
  PCM_CUDA(cudaMemcpy(h.data(), p, bytes, cudaMemcpyDeviceToHost));
  return h;
}

int run() {
  cudaStream_t s;
  PCM_CUDA(cudaStreamCreate(&s));
  const int64_t maxT = 16384;
  uint16_t* x_in = dev_alloc<uint16_t>(maxT * kD);
  uint16_t* x_out = dev_alloc<uint16_t>(maxT * kDi);
  uint16_t* w_in = dev_alloc<uint16_t>(kDpr * kD);
  uint16_t* w_out = dev_alloc<uint16_t>(kD * kDi);
  uint16_t* zx = dev_alloc<uint16_t>(maxT * kDpr);
  float* resid = dev_alloc<float>(maxT * kD);
  float* resid0 = dev_alloc<float>(maxT * kD);
  cuda::fill_uniform_bf16(x_in, maxT * kD, 1.0f, 1, s);
  cuda::fill_uniform_bf16(x_out, maxT * kDi, 1.0f, 2, s);
  cuda::fill_uniform_bf16(w_in, kDpr * kD, 0.02f, 3, s);
  cuda::fill_uniform_bf16(w_out, kD * kDi, 0.02f, 4, s);
  cuda::fill_uniform_bf16(zx, maxT * kD, 1.0f, 5, s);  // scratch bf16 values for the residual
  cuda::bf16_to_f32(resid0, zx, maxT * kD, s);
  PCM_CUDA(cudaStreamSynchronize(s));
  cuda::Gemm gemm;
  std::printf("| product | T | algorithm | ms | TFLOP/s | same bits as the first |\n| --- | --- | --- | --- | --- | --- |\n");
  for (int64_t T : {int64_t{4096}, int64_t{16384}})
    for (bool out : {false, true}) {  // in_proj (bf16 output), out_proj (+= fp32 residual)
      const int64_t n = out ? kD : kDpr, k = out ? kDi : kD;
      const double flop = 2.0 * T * n * k;
      const auto algos = gemm.algorithms(true, T, n, k, out, !out);
      std::vector<unsigned char> first;
      for (int a = 0; a < static_cast<int>(algos.size()); ++a) {
        gemm.use_algorithm(true, T, n, k, out, a, !out);
        auto restore = [&] {  // the residual the product accumulates into, untimed
          if (out) PCM_CUDA(cudaMemcpyAsync(resid, resid0, static_cast<size_t>(T * kD) * 4, cudaMemcpyDeviceToDevice, s));
        };
        auto launch = [&] {
          if (out)
            gemm.run(resid, x_out, w_out, true, T, n, k, 1.0f, s);
          else
            gemm.run_bf16_out(zx, x_in, w_in, T, n, k, s);
        };
        const float ms = cuda::median_time_ms(restore, launch, s);
        restore();
        launch();
        PCM_CUDA(cudaStreamSynchronize(s));
        auto bits = out ? download(resid, static_cast<size_t>(T * kD) * 4) : download(zx, static_cast<size_t>(T * n) * 2);
        if (a == 0) first = bits;
        std::printf("| %s | %lld | %d: %s | %.3f | %.0f | %s |\n", out ? "out_proj" : "in_proj", static_cast<long long>(T),
                    a, algos[static_cast<size_t>(a)].c_str(), ms, flop / ms / 1e9, bits == first ? "yes" : "no");
        std::fflush(stdout);
      }
      gemm.use_algorithm(true, T, n, k, out, 0, !out);
    }
  return 0;
}

}  // namespace
}  // namespace pcm

int main() {
  try {
    return pcm::run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cuda_prefill_gemm: %s\n", e.what());
    return 1;
  }
}
#else
int main() {
  std::puts("cuda_prefill_gemm: built without CUDA");
  return 0;
}
#endif
