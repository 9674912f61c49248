#include "eval/report.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "util/error.h"

namespace pcm::eval {

double pass_at_k(int64_t n, int64_t c, int64_t k) {
  PCM_CHECK(n >= 1 && c >= 0 && c <= n && k >= 1 && k <= n, "pass@k: need 1 <= k <= n and 0 <= c <= n (n={}, c={}, k={})", n, c, k);
  if (n - c < k) return 1.0;
  // prod_{i = n-c+1}^{n} (1 - k / i), the stable form of C(n-c, k) / C(n, k).
  double fail = 1.0;
  for (int64_t i = n - c + 1; i <= n; ++i) fail *= 1.0 - static_cast<double>(k) / static_cast<double>(i);
  return 1.0 - fail;
}

namespace {

struct MeanSe {
  double mean = 0, se = 0;
};

MeanSe mean_se(const std::vector<double>& v) {
  MeanSe r;
  if (v.empty()) return r;
  for (double x : v) r.mean += x;
  r.mean /= static_cast<double>(v.size());
  if (v.size() > 1) {
    double ss = 0;
    for (double x : v) ss += (x - r.mean) * (x - r.mean);
    r.se = std::sqrt(ss / static_cast<double>(v.size() - 1) / static_cast<double>(v.size()));
  }
  return r;
}

double percentile(std::vector<int64_t> v, double q) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(pos), hi = std::min(lo + 1, v.size() - 1);
  return static_cast<double>(v[lo]) + (pos - static_cast<double>(lo)) * static_cast<double>(v[hi] - v[lo]);
}

}  // namespace

json summarize(const std::vector<ProblemSamples>& problems) {
  PCM_CHECK(!problems.empty(), "report: no problems");
  int64_t min_n = INT64_MAX, samples = 0, valid = 0;
  std::vector<double> p1;
  std::vector<int64_t> lengths;
  std::map<std::string, std::vector<double>> groups;
  for (const auto& p : problems) {
    const int64_t n = static_cast<int64_t>(p.correct.size());
    PCM_CHECK(n > 0, "report: problem {} has no samples", p.id);
    const int64_t c = std::count(p.correct.begin(), p.correct.end(), true);
    min_n = std::min(min_n, n);
    samples += n;
    valid += p.format_valid;
    p1.push_back(static_cast<double>(c) / static_cast<double>(n));
    for (const auto& g : p.groups) groups[g].push_back(p1.back());
    lengths.insert(lengths.end(), p.lengths.begin(), p.lengths.end());
  }
  MeanSe m = mean_se(p1);
  json out = {{"problems", problems.size()}, {"samples", samples}, {"pass@1", {{"mean", m.mean}, {"stderr", m.se}}}};
  json pk = json::object();
  for (int64_t k = 1; k <= min_n; k *= 2) {
    std::vector<double> v;
    for (const auto& p : problems)
      v.push_back(pass_at_k(static_cast<int64_t>(p.correct.size()), std::count(p.correct.begin(), p.correct.end(), true), k));
    pk[std::to_string(k)] = mean_se(v).mean;
  }
  out["pass@k"] = pk;
  json g = json::object();
  for (const auto& [name, v] : groups) {
    MeanSe s = mean_se(v);
    g[name] = {{"problems", v.size()}, {"pass@1", s.mean}, {"stderr", s.se}};
  }
  out["groups"] = g;
  if (!lengths.empty()) {
    double sum = 0;
    for (int64_t l : lengths) sum += static_cast<double>(l);
    out["length"] = {{"mean", sum / static_cast<double>(lengths.size())}, {"p50", percentile(lengths, 0.5)},
                     {"p95", percentile(lengths, 0.95)}};
  }
  out["format_valid_rate"] = static_cast<double>(valid) / static_cast<double>(samples);
  return out;
}

std::string markdown_summary(const std::string& name, const json& s) {
  std::string ks;
  for (const auto& [k, v] : s.at("pass@k").items()) ks += fmt::format("{}pass@{} {:.1f}", ks.empty() ? "" : ", ", k, 100.0 * v.get<double>());
  return fmt::format("| {} | {} | {} | {:.1f} ± {:.1f} | {} |\n", name, s.at("problems").get<int64_t>(), s.at("samples").get<int64_t>(),
                     100.0 * s.at("pass@1").at("mean").get<double>(), 100.0 * s.at("pass@1").at("stderr").get<double>(), ks);
}

}  // namespace pcm::eval
