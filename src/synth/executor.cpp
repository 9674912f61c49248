#include "synth/executor.h"

#include <algorithm>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "util/error.h"

namespace pcm::synth {

size_t run_bounded(size_t n, const ExecutorOptions& options, const std::function<void(size_t)>& fn) {
  PCM_CHECK(options.concurrency >= 1 && options.concurrency <= kMaxConcurrency,
            "concurrency must be between 1 and {} (got {})", kMaxConcurrency, options.concurrency);
  std::atomic<size_t> next{0};
  std::atomic<size_t> completed{0};
  std::atomic<bool> failed{false};
  std::exception_ptr first_error;
  std::mutex error_mutex;

  auto worker = [&] {
    for (;;) {
      if (failed.load() || (options.stop && options.stop->load())) return;
      size_t i = next.fetch_add(1);
      if (i >= n) return;
      try {
        fn(i);
        completed.fetch_add(1);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!first_error) first_error = std::current_exception();
        failed.store(true);
      }
    }
  };

  size_t threads = std::min<size_t>(static_cast<size_t>(options.concurrency), n);
  if (threads <= 1) {
    worker();
  } else {
    std::vector<std::thread> pool;
    pool.reserve(threads);
    for (size_t t = 0; t < threads; ++t) pool.emplace_back(worker);
    for (auto& t : pool) t.join();
  }
  if (first_error) std::rethrow_exception(first_error);
  return completed.load();
}

}  // namespace pcm::synth
