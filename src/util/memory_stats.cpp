#include "util/memory_stats.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <memory>

namespace pcm {

size_t peak_rss_bytes() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<size_t>(ru.ru_maxrss) * 1024;
}

double measure_read_bandwidth_gbs(size_t buffer_bytes, int reps) {
  const size_t n = buffer_bytes / sizeof(float);
  std::unique_ptr<float[]> a(new float[n]);
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; ++i) a[i] = 1.0f;  // first touch by the thread that will read it
  double best = 0.0;
  volatile float sink = 0.0f;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    float total = 0.0f;
#pragma omp parallel
    {
      // Eight independent sums keep the adds off the critical path; only the loads should limit.
      float acc[8][16] = {};
#pragma omp for schedule(static)
      for (size_t i = 0; i < n / 128; ++i)
        for (int u = 0; u < 8; ++u)
#pragma omp simd
          for (int l = 0; l < 16; ++l) acc[u][l] += a[i * 128 + static_cast<size_t>(u) * 16 + static_cast<size_t>(l)];
      float s = 0.0f;
      for (auto& row : acc)
        for (float v : row) s += v;
#pragma omp atomic
      total += s;
    }
    double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    sink = sink + total;
    best = std::max(best, static_cast<double>(n / 128 * 128 * sizeof(float)) / sec / 1e9);
  }
  return best;
}

}  // namespace pcm
