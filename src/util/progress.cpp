#include "util/progress.h"

#include <cstdio>
#include <fmt/format.h>
#include <unistd.h>

namespace pcm {

ProgressMeter::ProgressMeter(int64_t total, size_t window) : total_(total), window_(window < 2 ? 2 : window) {
  marks_.push_back({Clock::now(), 0, 0.0});
}

void ProgressMeter::update(int64_t done, double work) {
  double acc = marks_.back().work + work;
  marks_.push_back({Clock::now(), done, acc});
  while (marks_.size() > window_) marks_.pop_front();
}

double ProgressMeter::rate() const {
  if (marks_.size() < 2) return 0.0;
  double secs = std::chrono::duration<double>(marks_.back().t - marks_.front().t).count();
  return secs > 0 ? (marks_.back().work - marks_.front().work) / secs : 0.0;
}

double ProgressMeter::eta_seconds() const {
  if (marks_.size() < 2) return -1;
  double secs = std::chrono::duration<double>(marks_.back().t - marks_.front().t).count();
  int64_t units = marks_.back().done - marks_.front().done;
  if (units <= 0 || secs <= 0) return -1;
  return static_cast<double>(total_ - marks_.back().done) * secs / static_cast<double>(units);
}

std::string ProgressMeter::format_duration(double s) {
  if (s < 0) return "?";
  auto n = static_cast<long long>(s + 0.5);
  if (n >= 3600) return fmt::format("{}h{:02}m", n / 3600, (n % 3600) / 60);
  if (n >= 60) return fmt::format("{}m{:02}s", n / 60, n % 60);
  return fmt::format("{}s", n);
}

void print_progress_line(const std::string& line, bool final) {
  static const bool tty = isatty(fileno(stderr));
  if (tty) std::fprintf(stderr, "\r%s\033[K%s", line.c_str(), final ? "\n" : "");
  else std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

}  // namespace pcm
