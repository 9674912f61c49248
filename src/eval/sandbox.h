// Runs untrusted Python (model-written code plus a benchmark's tests) in a child process that cannot
// hurt the harness: its own temp directory, rlimits on CPU seconds, address space, file size, open files
// and (when we can drop to an unprivileged uid) process count, a wall-clock timeout that kills the whole
// process group, stdout/stderr captured and truncated, and — where the machine allows it, detected at
// run time — a new network namespace (no network) and a new PID namespace (nothing outlives the run).
#pragma once
#include <cstdint>
#include <string>

namespace pcm::eval {

struct SandboxLimits {
  double cpu_seconds = 10.0;
  double wall_seconds = 20.0;
  uint64_t address_space_bytes = uint64_t{2} << 30;
  uint64_t file_size_bytes = uint64_t{16} << 20;
  int64_t max_processes = 64;     // per unprivileged uid (applies when the harness runs as root)
  size_t output_bytes = 16 << 10;  // kept of stdout and of stderr each; the rest is read and dropped
};

struct SandboxResult {
  int exit_code = -1;       // the program's exit status, or -1 when killed by a signal
  int signal = 0;           // the signal that ended it, if any
  bool timed_out = false;   // the wall clock ran out and the process group was killed
  double seconds = 0.0;
  std::string out, err;     // truncated
  bool passed() const { return exit_code == 0 && !timed_out; }
};

// What isolation this machine allows, detected once (network namespace, PID namespace, uid drop).
struct SandboxIsolation {
  bool network_namespace = false;
  bool pid_namespace = false;
  bool unprivileged_uid = false;
  std::string describe() const;
};
const SandboxIsolation& sandbox_isolation();

// Runs `python3 -I -B program.py` with `program` as the file's text. Thread-safe; many may run at once.
SandboxResult run_python(const std::string& program, const SandboxLimits& limits = {});

}  // namespace pcm::eval
