// CPU kernel timings at real shapes (the kernels in src/, never copies): matmul (decode and prefill
// rows) and the chunked SSD scan. Prints GB/s and GFLOP/s against the machine's measured bandwidth.
//   ./build/bench/cpu_kernels [shape=mamba2-370m] [T=512]
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/cpu/matmul.h"
#include "kernels/cpu/ssd.h"
#include "model/config.h"
#include "model/weights.h"

using namespace pcm;

template <class F>
double median_seconds(F&& f, int reps) {
  std::vector<double> t;
  f();  // warm-up
  for (int i = 0; i < reps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

double read_bandwidth_gbs() {
  const size_t n = 256u << 20;  // 1 GiB of floats... 256M floats
  std::vector<float> a(n / 4, 1.0f);
  double s = median_seconds([&] {
    float acc = 0;
#pragma omp parallel for simd reduction(+ : acc)
    for (size_t i = 0; i < a.size(); ++i) acc += a[i];
    if (acc == 42) std::puts("");
  }, 5);
  return static_cast<double>(a.size() * 4) / s / 1e9;
}

int main(int argc, char** argv) {
  std::string shape = argc > 1 ? argv[1] : "mamba2-370m";
  int64_t T = argc > 2 ? std::atoll(argv[2]) : 512;
  Mamba2Config c = named_shape(shape);
  c.num_layers = 1;
  Mamba2Weights w = random_mamba2_weights(c, DType::BF16, 1);
  const MatrixRef& in_proj = w.layers[0].in_proj;
  const double bw = read_bandwidth_gbs();
  std::printf("%s, %d threads, read bandwidth %.1f GB/s\n", shape.c_str(), omp_get_max_threads(), bw);
  std::vector<float> x(static_cast<size_t>(T * in_proj.cols), 0.5f), y(static_cast<size_t>(T * in_proj.rows));
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
  {
    Mamba2Weights w32 = random_mamba2_weights(c, DType::F32, 1);
    const MatrixRef& m = w32.layers[0].in_proj;
    double s = median_seconds([&] { cpu::matmul_forward(y.data(), x.data(), m, nullptr, T); }, 5);
    std::printf("matmul in_proj f32 (plain sgemm), T=%lld: %.3f ms, %.1f GFLOP/s\n", static_cast<long long>(T), s * 1e3,
                2.0 * static_cast<double>(T * m.rows * m.cols) / s / 1e9);
  }
  if (cpu::bf16_gemm_available()) {
    double s = median_seconds([&] { cpu::matmul_forward(y.data(), x.data(), in_proj, nullptr, T, cpu::MatmulPrecision::Bf16Activations); }, 5);
    std::printf("matmul in_proj bf16 activations (vdpbf16ps), T=%lld: %.3f ms, %.1f GFLOP/s\n", static_cast<long long>(T), s * 1e3,
                2.0 * static_cast<double>(T * in_proj.rows * in_proj.cols) / s / 1e9);
  }
  for (int64_t rows : {int64_t{1}, int64_t{4}, T}) {
    double s = median_seconds([&] { cpu::matmul_forward(y.data(), x.data(), in_proj, nullptr, rows); }, 10);
    double flops = 2.0 * static_cast<double>(rows * in_proj.rows * in_proj.cols);
    std::printf("matmul in_proj [%lld x %lld] bf16, T=%lld: %.3f ms, %.1f GB/s weights (%.0f%% of read bw), %.1f GFLOP/s\n",
                static_cast<long long>(in_proj.rows), static_cast<long long>(in_proj.cols), static_cast<long long>(rows),
                s * 1e3, static_cast<double>(in_proj.bytes()) / s / 1e9,
                100.0 * static_cast<double>(in_proj.bytes()) / s / 1e9 / bw, flops / s / 1e9);
  }
  {  // a matrix far larger than the caches: what one decode step's weight stream achieves
    const MatrixRef& head = w.lm_head;
    std::vector<float> xv(static_cast<size_t>(head.cols), 0.01f), yv(static_cast<size_t>(head.rows));
    double s = median_seconds([&] { cpu::matmul_forward(yv.data(), xv.data(), head, nullptr, 1); }, 10);
    std::printf("matvec lm_head [%lld x %lld] bf16 (%.0f MB, beyond the caches): %.3f ms, %.1f GB/s\n",
                static_cast<long long>(head.rows), static_cast<long long>(head.cols), head.bytes() / 1e6, s * 1e3,
                static_cast<double>(head.bytes()) / s / 1e9);
  }
  const cpu::SsdShape ss{c.num_heads, c.head_dim, c.n_groups, c.state_size};
  const int64_t stride = c.conv_dim();
  std::vector<float> xbc(static_cast<size_t>(T * stride)), dt(static_cast<size_t>(T * c.num_heads), 0.01f);
  for (size_t i = 0; i < xbc.size(); ++i) xbc[i] = static_cast<float>((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
  std::vector<float> A(static_cast<size_t>(c.num_heads), -2.0f), D(static_cast<size_t>(c.num_heads), 1.0f);
  std::vector<float> state(static_cast<size_t>(ss.H * ss.P * ss.N)), yy(static_cast<size_t>(T * ss.H * ss.P));
  std::vector<float> scratch(static_cast<size_t>(cpu::ssd_chunked_scratch_floats(c.chunk_size, ss)));
  const int64_t di = c.d_inner(), GN = c.n_groups * c.state_size;
  cpu::SsdInputs in{xbc.data(), xbc.data() + di, xbc.data() + di + GN, stride, dt.data(), A.data(), D.data()};
  double s = median_seconds([&] { cpu::ssd_chunked_forward(yy.data(), in, state.data(), T, c.chunk_size, ss, scratch.data()); }, 5);
  double q = static_cast<double>(std::min(T, c.chunk_size));
  double flops = static_cast<double>(T) * (q * static_cast<double>(ss.G * ss.N) + q * static_cast<double>(ss.H * ss.P) +
                                           4.0 * static_cast<double>(ss.H * ss.P * ss.N));
  std::printf("ssd chunked T=%lld Q=%lld: %.3f ms (%.1f GFLOP/s)\n", static_cast<long long>(T),
              static_cast<long long>(c.chunk_size), s * 1e3, flops / s / 1e9);
  s = median_seconds([&] { cpu::ssd_recurrent_forward(yy.data(), in, state.data(), 1, ss); }, 50);
  std::printf("ssd step (decode, 1 token): %.3f ms, state %.1f MB read+written: %.1f GB/s\n", s * 1e3,
              static_cast<double>(state.size() * 8) / 1e6, static_cast<double>(state.size() * 8) / s / 1e9);
  return 0;
}
