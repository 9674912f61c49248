// Memory figures for benchmarks: this process's peak resident set, and the machine's read bandwidth
// (the roofline that decode's weight stream is measured against).
#pragma once
#include <cstddef>

namespace pcm {

size_t peak_rss_bytes();  // getrusage's ru_maxrss
size_t physical_memory_bytes();  // this machine's RAM (sysconf)

// Streams a buffer far larger than the caches with every OpenMP thread and returns GB/s (best of reps).
double measure_read_bandwidth_gbs(size_t buffer_bytes = size_t{1} << 30, int reps = 5);

}  // namespace pcm
