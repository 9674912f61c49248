// pcm plot: draws a training metrics.jsonl (loss and lr per phase), or an eval run's report.json
// (pass@k per benchmark, and accuracy against a generation-length budget from its samples.jsonl), as SVG.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <cstdio>
#include <map>
#include <memory>

#include "cli/command.h"
#include "io/jsonl.h"
#include "util/error.h"
#include "util/file.h"
#include "util/json.h"
#include "util/svg_plot.h"

namespace pcm::cli {
namespace {

struct Options {
  std::string metrics, out = "loss.svg", title;
  bool log_loss = false;
};

// A key k of "pass@k" (std::stod took "1x" and said only "stod" for "x").
int64_t sample_count(const std::string& k, const std::string& field) {
  int64_t n = 0;
  const auto [end, ec] = std::from_chars(k.data(), k.data() + k.size(), n);
  PCM_CHECK(ec == std::errc() && end == k.data() + k.size() && n >= 1, "{}: key \"{}\" is not a sample count k >= 1",
            field, k);
  return n;
}

// report.json + samples.jsonl of `pcm eval`: pass@k against k per benchmark, and pass@1 if every sample
// had been cut at a token budget (a sample counts only when correct and no longer than the budget).
void plot_eval(const Options& o) {
  const json report = parse_json(read_text_file(o.metrics), o.metrics);
  PCM_CHECK(report.is_object(), "{}: expected pcm eval's report.json", o.metrics);
  SvgPanel pk{"pass@k per benchmark", "k (samples per problem)", "pass@k (%)", {}, false, {}};
  for (const auto& [bench, summary] : report.items()) {
    if (!summary.is_object() || !summary.contains("pass@k")) continue;
    const std::string field = fmt::format("{}: {}.pass@k", o.metrics, bench);
    const json& pass_at_k = summary.at("pass@k");
    PCM_CHECK(pass_at_k.is_object(), "{}: expected an object {{k: value}}, got {}", field, pass_at_k.dump());
    SvgSeries s{bench, {}, {}, ""};
    for (const auto& [k, v] : pass_at_k.items()) {
      s.x.push_back(static_cast<double>(sample_count(k, field)));
      s.y.push_back(100.0 * json_to_double(v, field + "." + k));
    }
    std::vector<size_t> order(s.x.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return s.x[a] < s.x[b]; });
    SvgSeries sorted{bench, {}, {}, ""};
    for (size_t i : order) sorted.x.push_back(s.x[i]), sorted.y.push_back(s.y[i]);
    pk.series.push_back(sorted);
  }
  PCM_CHECK(!pk.series.empty(), "{}: no benchmark summaries with pass@k", o.metrics);
  const std::string samples = (std::filesystem::path(o.metrics).parent_path() / "samples.jsonl").string();
  std::vector<SvgPanel> panels = {pk};
  if (file_exists(samples)) {
    std::map<std::string, std::vector<std::pair<int64_t, bool>>> per;  // benchmark -> (tokens, correct)
    int64_t longest = 1;
    for_each_jsonl(samples, [&](const json& r, int64_t) {
      const int64_t t = r.value("generated_tokens", int64_t{0});
      per[r.value("benchmark", std::string("?"))].emplace_back(t, r.value("correct", false));
      longest = std::max(longest, t);
    });
    SvgPanel budget{"accuracy against a generation-length budget", "budget (generated tokens)", "pass@1 (%)", {}, false, {}};
    for (const auto& [bench, v] : per) {
      SvgSeries s{bench, {}, {}, ""};
      for (int i = 0; i <= 24; ++i) {
        const double b = std::max(1.0, static_cast<double>(longest) * i / 24.0);
        int64_t ok = 0;
        for (const auto& [t, c] : v) ok += c && static_cast<double>(t) <= b;
        s.x.push_back(b);
        s.y.push_back(100.0 * static_cast<double>(ok) / static_cast<double>(v.size()));
      }
      budget.series.push_back(s);
    }
    panels.push_back(budget);
  }
  SvgPlotOptions so;
  so.title = o.title.empty() ? o.metrics : o.title;
  write_file_atomic(o.out, render_svg_plot(panels, so));
  std::printf("wrote %s (%zu benchmark(s))\n", o.out.c_str(), pk.series.size());
}

void run(const Options& o) {
  if (o.metrics.size() > 5 && o.metrics.compare(o.metrics.size() - 5, 5, ".json") == 0) return plot_eval(o);
  std::map<int64_t, SvgSeries> loss, lr;  // by phase
  std::vector<double> boundaries;
  int64_t rows = 0;
  for_each_jsonl(o.metrics, [&](const json& row, int64_t line) {
    if (!row.is_object()) fail("{}:{}: expected an object", o.metrics, line);
    if (row.contains("event")) {
      if (row["event"] == "phase_start" && row.value("step", int64_t{0}) > 0)
        boundaries.push_back(static_cast<double>(row["step"].get<int64_t>()) + 0.5);
      return;
    }
    if (!row.contains("step") || !row["step"].is_number()) fail("{}:{}: a metrics row needs a numeric \"step\"", o.metrics, line);
    int64_t phase = row.value("phase", int64_t{1});
    std::string name = "phase " + std::to_string(phase);
    if (row.contains("phase_name") && row["phase_name"].is_string()) name += " " + row["phase_name"].get<std::string>();
    double step = row["step"].get<double>();
    auto& l = loss[phase];
    auto& r = lr[phase];
    l.name = r.name = name;
    l.x.push_back(step);
    l.y.push_back(row.contains("loss") && row["loss"].is_number() ? row["loss"].get<double>() : NAN);
    r.x.push_back(step);
    r.y.push_back(row.contains("lr") && row["lr"].is_number() ? row["lr"].get<double>() : NAN);
    rows++;
  });
  if (rows == 0) fail("{}: no step rows to plot", o.metrics);
  SvgPanel lp{"training loss", "step", "loss (nats/token)", {}, o.log_loss, boundaries};
  SvgPanel rp{"learning rate", "step", "lr", {}, false, boundaries};
  for (auto& [_, s] : loss) lp.series.push_back(s);
  for (auto& [_, s] : lr) rp.series.push_back(s);
  SvgPlotOptions so;
  so.title = o.title.empty() ? o.metrics : o.title;
  write_file_atomic(o.out, render_svg_plot({lp, rp}, so));
  std::printf("wrote %s (%lld steps, %zu phase(s))\n", o.out.c_str(), static_cast<long long>(rows), loss.size());
}

PCM_REGISTER_COMMAND({"plot", "Plot a training metrics.jsonl (loss, lr) or an eval report.json (pass@k, budget) as SVG", [](CLI::App* sub) {
                        auto o = std::make_shared<Options>();
                        sub->add_option("metrics", o->metrics, "metrics.jsonl written by pcm train, or report.json of pcm eval")->required();
                        sub->add_option("--out,-o", o->out, "output SVG (default loss.svg)");
                        sub->add_option("--title", o->title, "chart title (default: the metrics path)");
                        sub->add_flag("--log-loss", o->log_loss, "logarithmic loss axis");
                        sub->callback([o] { run(*o); });
                      }});

}  // namespace
}  // namespace pcm::cli
