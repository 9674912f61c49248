// Helpers for the CUDA tests: device buffers, random inputs, poisoned outputs, a skip when no GPU.
#pragma once
#ifdef PCM_HAVE_CUDA
#include <cuda_runtime_api.h>

#include <cstring>
#include <random>
#include <vector>

#include "kernels/cuda/cuda_check.h"
#include "tensor/dtype.h"
#include "test_util.h"

namespace pcm::test {

inline bool have_gpu() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return n > 0;
}

#define PCM_REQUIRE_GPU()          \
  if (!::pcm::test::have_gpu()) { \
    GTEST_SKIP() << "no CUDA device"; \
  }

template <class T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t n) : n_(n) { PCM_CUDA(cudaMalloc(reinterpret_cast<void**>(&p_), std::max<size_t>(n, 1) * sizeof(T))); }
  explicit DeviceBuffer(const std::vector<T>& v) : DeviceBuffer(v.size()) { upload(v); }
  ~DeviceBuffer() { cudaFree(p_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  T* get() const { return p_; }
  void upload(const std::vector<T>& v) {
    PCM_CUDA(cudaMemcpy(p_, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> download() const {
    PCM_CUDA(cudaDeviceSynchronize());
    std::vector<T> v(n_);
    PCM_CUDA(cudaMemcpy(v.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return v;
  }
  void poison() { PCM_CUDA(cudaMemset(p_, 0xFF, n_ * sizeof(T))); }  // NaN for floats

 private:
  T* p_ = nullptr;
  size_t n_;
};

// A non-blocking stream of its own: kernels launched on it through launch_pdl get programmatic dependent launch (the
// legacy default stream gets plain launches). DeviceBuffer's uploads do not order against it: synchronise the device
// after them.
class TestStream {
 public:
  TestStream() { PCM_CUDA(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
  ~TestStream() { cudaStreamDestroy(s_); }
  TestStream(const TestStream&) = delete;
  cudaStream_t get() const { return s_; }

 private:
  cudaStream_t s_ = nullptr;
};

inline std::vector<float> random_vec(size_t n, float lo, float hi, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

inline std::vector<float> bf16_round(const std::vector<float>& v) {
  std::vector<float> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = bf16_to_f32(f32_to_bf16(v[i]));
  return r;
}

// The bf16 bits of v (round to nearest even), for device buffers of bf16 inputs.
inline std::vector<uint16_t> bf16_bits(const std::vector<float>& v) {
  std::vector<uint16_t> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = f32_to_bf16(v[i]);
  return r;
}

inline std::vector<float> bf16_bits_to_f32(const std::vector<uint16_t>& v) {
  std::vector<float> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = bf16_to_f32(v[i]);
  return r;
}

inline bool all_finite(const std::vector<float>& v) {
  for (float x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

}  // namespace pcm::test
#endif
