#include "util/memory_stats.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>

#include <fmt/format.h>

#include "util/error.h"

namespace pcm {

size_t peak_rss_bytes() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<size_t>(ru.ru_maxrss) * 1024;
}

size_t physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) : 0;
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024.0 && u < 4) {
    b /= 1024.0;
    ++u;
  }
  return fmt::format("{:.2f} {}", b, units[u]);
}

void check_fits(const std::string& label, int64_t count, double item_bytes, const std::string& what, double room,
                const std::string& room_what) {
  const double need = static_cast<double>(count) * item_bytes;
  if (need <= room) return;
  fail("{}: {} {} of {} need {}, more than {}", label, count, what, human_bytes(item_bytes), human_bytes(need),
       room_what);
}

void check_fits_in_memory(const std::string& label, int64_t count, double item_bytes, const std::string& what) {
  const double ram = static_cast<double>(physical_memory_bytes());
  if (ram <= 0) return;  // unknown: nothing to check against
  check_fits(label, count, item_bytes, what, ram, fmt::format("this machine's {} of memory", human_bytes(ram)));
}

double measure_read_bandwidth_gbs(size_t buffer_bytes, int reps) {
  // 64-byte vectors (GCC lowers them to the widest registers the build targets) and four independent
  // sums: one cache line per load and only the loads on the critical path. A float[8][16] array summed
  // with `omp simd` read ~20% below this on Zen 5 (47 against 57-66 GB/s in the same minutes), which made
  // decode look closer to the floor than it was.
  using Line = float __attribute__((vector_size(64)));
  const size_t n = buffer_bytes / sizeof(Line) / 4 * 4;
  std::unique_ptr<Line[]> a(new Line[n]);
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; ++i) a[i] = Line{} + 1.0f;  // first touch by the thread that will read it
  double best = 0.0;
  volatile float sink = 0.0f;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    float total = 0.0f;
#pragma omp parallel
    {
      Line s0{}, s1{}, s2{}, s3{};
#pragma omp for schedule(static)
      for (size_t i = 0; i < n; i += 4) {
        s0 += a[i];
        s1 += a[i + 1];
        s2 += a[i + 2];
        s3 += a[i + 3];
      }
      const Line s = (s0 + s1) + (s2 + s3);
      float part = 0.0f;
      for (int l = 0; l < 16; ++l) part += s[l];
#pragma omp atomic
      total += part;
    }
    double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    sink = sink + total;
    best = std::max(best, static_cast<double>(n * sizeof(Line)) / sec / 1e9);
  }
  return best;
}

}  // namespace pcm
