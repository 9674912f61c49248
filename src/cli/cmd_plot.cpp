// pcm plot: draws a training metrics.jsonl (loss and lr per phase) as an SVG.
#include <cmath>
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

void run(const Options& o) {
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

PCM_REGISTER_COMMAND({"plot", "Plot a training metrics.jsonl (loss and lr per phase) as SVG", [](CLI::App* sub) {
                        auto o = std::make_shared<Options>();
                        sub->add_option("metrics", o->metrics, "metrics.jsonl written by pcm train")->required();
                        sub->add_option("--out,-o", o->out, "output SVG (default loss.svg)");
                        sub->add_option("--title", o->title, "chart title (default: the metrics path)");
                        sub->add_flag("--log-loss", o->log_loss, "logarithmic loss axis");
                        sub->callback([o] { run(*o); });
                      }});

}  // namespace
}  // namespace pcm::cli
