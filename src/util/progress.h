// A progress line for long jobs: rate and ETA from a moving window, printed as one line per update
// (with '\r' rewriting on a terminal, plain lines when stderr is a file or pipe).
#pragma once
#include <chrono>
#include <cstdint>
#include <deque>
#include <string>

namespace pcm {

class ProgressMeter {
 public:
  explicit ProgressMeter(int64_t total, size_t window = 20);
  // Records that `done` units are complete and `work` (e.g. tokens) was processed since the last call.
  void update(int64_t done, double work);
  double rate() const;          // work per second over the window
  double eta_seconds() const;   // for the remaining units at the windowed unit rate; -1 when unknown
  static std::string format_duration(double seconds);  // "1h02m", "3m05s", "12s", "?"

 private:
  using Clock = std::chrono::steady_clock;
  int64_t total_;
  size_t window_;
  struct Mark { Clock::time_point t; int64_t done; double work; };
  std::deque<Mark> marks_;
};

// Writes `line` to stderr: on a terminal it overwrites the previous one ('\r', clear to end), else
// ends it with a newline. `final` ends a terminal line too.
void print_progress_line(const std::string& line, bool final = false);

}  // namespace pcm
