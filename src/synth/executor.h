// Bounded concurrency for request-bound work: K worker threads pull item indices from a shared counter,
// so at most K requests are in flight and a slow item never holds up the others. Used by every synth
// stage and by `pcm eval --endpoint`.
#pragma once
#include <atomic>
#include <cstddef>
#include <functional>

namespace pcm::synth {

// At most this many requests in flight (a thread each): --concurrency 100000 over 500 problems x 64 samples
// started threads until the machine's limit.
constexpr int kMaxConcurrency = 1024;

struct ExecutorOptions {
  int concurrency = 8;  // 1..kMaxConcurrency
  // Checked before each new item; when it becomes true no new item starts and run() returns after the
  // in-flight ones finish (e.g. set from a SIGINT handler). May be null.
  const std::atomic<bool>* stop = nullptr;
};

// Calls fn(i) for i in [0, n) from min(concurrency, n) threads (fn runs on the calling thread alone when
// concurrency is 1). The first exception thrown by fn stops new items from starting; it is rethrown once
// the in-flight items finish. Returns the number of items fn completed without throwing.
size_t run_bounded(size_t n, const ExecutorOptions& options, const std::function<void(size_t)>& fn);

}  // namespace pcm::synth
