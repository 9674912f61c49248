// Memory figures for benchmarks: this process's peak resident set, and the machine's read bandwidth
// (the roofline that decode's weight stream is measured against).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace pcm {

size_t peak_rss_bytes();  // getrusage's ru_maxrss
size_t physical_memory_bytes();  // this machine's RAM (sysconf)
std::string human_bytes(double bytes);  // "4.00 B", "2.41 MiB", "18.40 TiB"

// Refuses `count` items of `item_bytes` each (`what`: "states", "prompt ids") that this machine's RAM cannot hold,
// before anything is allocated, naming where the size came from (`label`: "--max-slots 20000", "c.toml: model"):
// with overcommit such a size was taken, then paged until the machine stalled (serve --max-slots 20000 of a 2.4 MiB
// state: 47 GiB on 24) or ended in a bare out-of-memory.
void check_fits_in_memory(const std::string& label, int64_t count, double item_bytes, const std::string& what);
// The same against another capacity (`room` bytes, described by `room_what`: "the 78.20 GiB this GPU has free beside
// the weights"); room <= 0 fails too.
void check_fits(const std::string& label, int64_t count, double item_bytes, const std::string& what, double room,
                const std::string& room_what);

// Streams a buffer far larger than the caches with every OpenMP thread and returns GB/s (best of reps).
double measure_read_bandwidth_gbs(size_t buffer_bytes = size_t{1} << 30, int reps = 5);

}  // namespace pcm
