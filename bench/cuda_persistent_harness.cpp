// The one-row persistent decode (decode v27, src/kernels/cuda/decode_persistent.cu) outside the model, to part where a
// fault comes from: launched directly or captured in a graph, alone or with decode_head after it, as a plain launch
// (+plainhead) or under programmatic dependent launch as the model's decode step has it (+head; in a graph: a PDL edge
// from the cooperative node). The small-g4 fixture's shape, random bf16 weights, three steps; each prints the
// residual's first and last value, or the CUDA error it ended in.
// usage: cuda_persistent_harness direct|graph[+head|+plainhead] [bf16]
#include <cstdio>
#include <cstring>

#ifdef PCM_HAVE_CUDA
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <exception>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ops.h"

namespace {

using namespace pcm;

std::mt19937 rng(1);

template <class T>
T* device_zeros(size_t n) {
  void* p = nullptr;
  PCM_CUDA(cudaMalloc(&p, std::max<size_t>(n * sizeof(T), 16)));
  PCM_CUDA(cudaMemset(p, 0, std::max<size_t>(n * sizeof(T), 16)));
  return static_cast<T*>(p);
}

float* device_uniform(size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  float* p = device_zeros<float>(n);
  PCM_CUDA(cudaMemcpy(p, v.data(), n * 4, cudaMemcpyHostToDevice));
  return p;
}

const void* device_matrix(size_t n) {  // bf16, drawn on the device (std 0.03)
  auto* p = device_zeros<uint16_t>(n);
  cuda::fill_uniform_bf16(p, static_cast<int64_t>(n), 0.03f, rng(), nullptr);
  PCM_CUDA(cudaDeviceSynchronize());
  return p;
}

int run(const std::string& mode, bool state_bf16) {
  const int64_t d = 128, H = 8, P = 32, N = 32, G = 4, K = 4, L = 2, V = 512, slots = 4, maxB = 8;
  const int64_t di = H * P, cd = di + 2 * G * N, dpr = di + cd + H;
  std::vector<cuda::DeviceLayer> layers(L);
  for (auto& l : layers) {
    l.norm = device_uniform(d, 0.9f, 1.1f);
    l.in_proj = device_matrix(dpr * d);
    l.conv_w = device_uniform(cd * K, -0.5f, 0.5f);
    l.conv_b = device_uniform(cd, -0.5f, 0.5f);
    l.dt_bias = device_uniform(H, -4.0f, -2.0f);
    l.A = device_uniform(H, -4.0f, -1.0f);
    l.D = device_uniform(H, 0.9f, 1.1f);
    l.gate_norm = device_uniform(di, 0.9f, 1.1f);
    l.out_proj = device_matrix(d * di);
  }
  auto* layers_dev = device_zeros<cuda::DeviceLayer>(L);
  PCM_CUDA(cudaMemcpy(layers_dev, layers.data(), L * sizeof(cuda::DeviceLayer), cudaMemcpyHostToDevice));
  cudaStream_t s;
  PCM_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  float* resid = device_uniform(d, -1.0f, 1.0f);
  int32_t* ints = device_zeros<int32_t>(3 * maxB);  // tokens, slots (row 0: slot 0), positions (row 0: 1)
  const int32_t pos = 1;
  PCM_CUDA(cudaMemcpy(ints + 2 * maxB, &pos, 4, cudaMemcpyHostToDevice));
  const cuda::SsdDims dims{static_cast<int32_t>(H), static_cast<int32_t>(P), static_cast<int32_t>(G),
                           static_cast<int32_t>(N)};
  cuda::decode_fused_prepare(std::max(d, di));
  if (!cuda::decode_persistent_prepare(d, di, di / G, K, dims, state_bf16)) {
    std::printf("the kernel does not take this shape on this device\n");
    return 1;
  }
  const cuda::PersistentDecode a{layers_dev,
                                 static_cast<int32_t>(L),
                                 resid,
                                 device_zeros<float>(dpr),
                                 device_zeros<float>(cd),
                                 device_zeros<float>(H),
                                 device_zeros<float>(di),
                                 device_zeros<float>(H),
                                 device_zeros<char>(slots * L * H * P * N * (state_bf16 ? 2 : 4)),
                                 state_bf16,
                                 device_zeros<float>(slots * L * cd * K),
                                 ints + maxB,
                                 ints + 2 * maxB,
                                 d,
                                 di,
                                 cd,
                                 static_cast<int32_t>(K),
                                 dims,
                                 di / G,
                                 1e-5f,
                                 0.0f,
                                 1e30f};
  unsigned* barrier = device_zeros<unsigned>(1);
  auto* row_queue = device_zeros<unsigned long long>(1);
  float* logits = device_zeros<float>(V);
  const void* lm_head = device_matrix(V * d);
  const float* norm_f = device_uniform(d, 0.9f, 1.1f);
  const bool graphs = mode.starts_with("graph"), head = mode.ends_with("head"), pdl = mode.ends_with("+head");
  const auto step_launches = [&] {
    cuda::decode_persistent(a, barrier, s);
    if (head) cuda::decode_head(logits, resid, norm_f, 1e-5f, lm_head, 1, V, d, s, row_queue, pdl);
  };
  for (int step = 0; step < 3; ++step) {
    if (!graphs) {
      step_launches();
    } else {
      cudaGraph_t graph;
      cudaGraphExec_t exec;
      PCM_CUDA(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
      step_launches();
      PCM_CUDA(cudaStreamEndCapture(s, &graph));
      PCM_CUDA(cudaGraphInstantiate(&exec, graph, cudaGraphInstantiateFlagUseNodePriority));
      PCM_CUDA(cudaGraphLaunch(exec, s));
      PCM_CUDA(cudaStreamSynchronize(s));
      PCM_CUDA(cudaGraphExecDestroy(exec));
      PCM_CUDA(cudaGraphDestroy(graph));
    }
    PCM_CUDA(cudaStreamSynchronize(s));
    std::vector<float> r(d);
    PCM_CUDA(cudaMemcpy(r.data(), resid, d * 4, cudaMemcpyDeviceToHost));
    std::printf("%s, %s state, step %d: ok, resid[0] %g resid[%lld] %g\n", mode.c_str(), state_bf16 ? "bf16" : "fp32",
                step, r[0], static_cast<long long>(d - 1), r[d - 1]);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  const bool known = mode.starts_with("direct") || mode.starts_with("graph");
  const std::string rest = known ? mode.substr(mode.starts_with("direct") ? 6 : 5) : "";
  if (!known || (!rest.empty() && rest != "+head" && rest != "+plainhead")) {
    std::fprintf(stderr, "usage: %s direct|graph[+head|+plainhead] [bf16]\n", argv[0]);
    return 2;
  }
  try {
    return run(mode, argc > 2 && std::strcmp(argv[2], "bf16") == 0);
  } catch (const std::exception& e) {
    std::printf("%s: %s\n", mode.c_str(), e.what());
    return 1;
  }
}

#else
int main() {
  std::fprintf(stderr, "cuda_persistent_harness: built without CUDA\n");
  return 1;
}
#endif
