#include "util/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <limits>

namespace pcm {
namespace {

const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

// "Nice" tick positions covering [lo, hi].
std::vector<double> ticks(double lo, double hi, int target = 6) {
  double span = hi - lo;
  if (!(span > 0)) return {lo};
  double raw = span / target, mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag * (raw / mag < 1.5 ? 1 : raw / mag < 3 ? 2 : raw / mag < 7 ? 5 : 10);
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) t.push_back(std::abs(v) < step * 1e-9 ? 0 : v);
  return t;
}

std::string num(double v) { return fmt::format("{:.6g}", v); }

}  // namespace

std::string render_svg_plot(const std::vector<SvgPanel>& panels, const SvgPlotOptions& o) {
  const int top = o.title.empty() ? 10 : 36, left = 80, right = 170, bottom = 50;
  const int H = top + static_cast<int>(panels.size()) * o.panel_height + 10;
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      o.width, H, o.width, H);
  if (!o.title.empty())
    s += fmt::format("<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"16\">{}</text>\n", o.width / 2, escape(o.title));
  for (size_t pi = 0; pi < panels.size(); ++pi) {
    const SvgPanel& p = panels[pi];
    const double y0 = top + static_cast<double>(pi) * o.panel_height + 20, ph = o.panel_height - 20 - bottom;
    const double x0 = left, pw = o.width - left - right;
    double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin, ymin = xmin, ymax = -xmin;
    auto ty = [&](double y) { return p.log_y ? std::log10(y) : y; };
    for (const auto& se : p.series)
      for (size_t i = 0; i < se.x.size() && i < se.y.size(); ++i) {
        double y = se.y[i];
        if (!std::isfinite(y) || !std::isfinite(se.x[i]) || (p.log_y && y <= 0)) continue;
        xmin = std::min(xmin, se.x[i]); xmax = std::max(xmax, se.x[i]);
        ymin = std::min(ymin, ty(y)); ymax = std::max(ymax, ty(y));
      }
    if (!std::isfinite(xmin)) { xmin = 0; xmax = 1; ymin = 0; ymax = 1; }
    if (xmax == xmin) xmax = xmin + 1;
    if (ymax == ymin) { ymin -= 0.5; ymax += 0.5; }
    double pad = (ymax - ymin) * 0.05;
    ymin -= pad; ymax += pad;
    auto X = [&](double x) { return x0 + (x - xmin) / (xmax - xmin) * pw; };
    auto Y = [&](double y) { return y0 + ph - (y - ymin) / (ymax - ymin) * ph; };
    s += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"14\">{}</text>\n", x0, y0 - 6, escape(p.title));
    s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#444\"/>\n", x0, y0, pw, ph);
    for (double t : ticks(xmin, xmax)) {
      s += fmt::format("<line x1=\"{0:.2f}\" x2=\"{0:.2f}\" y1=\"{1:.2f}\" y2=\"{2:.2f}\" stroke=\"#ddd\"/>"
                       "<text x=\"{0:.2f}\" y=\"{3:.2f}\" text-anchor=\"middle\">{4}</text>\n",
                       X(t), y0, y0 + ph, y0 + ph + 15, num(t));
    }
    for (double t : ticks(ymin, ymax)) {
      s += fmt::format("<line x1=\"{0:.2f}\" x2=\"{1:.2f}\" y1=\"{2:.2f}\" y2=\"{2:.2f}\" stroke=\"#ddd\"/>"
                       "<text x=\"{3:.2f}\" y=\"{4:.2f}\" text-anchor=\"end\">{5}</text>\n",
                       x0, x0 + pw, Y(t), x0 - 5, Y(t) + 4, num(p.log_y ? std::pow(10.0, t) : t));
    }
    for (double m : p.x_markers)
      if (m >= xmin && m <= xmax)
        s += fmt::format("<line x1=\"{0:.2f}\" x2=\"{0:.2f}\" y1=\"{1:.2f}\" y2=\"{2:.2f}\" stroke=\"#888\" "
                         "stroke-dasharray=\"4 3\"/>\n", X(m), y0, y0 + ph);
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", x0 + pw / 2, y0 + ph + 32, escape(p.x_label));
    s += fmt::format("<text transform=\"translate({},{}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n", 18,
                     y0 + ph / 2, escape(p.y_label));
    for (size_t si = 0; si < p.series.size(); ++si) {
      const SvgSeries& se = p.series[si];
      std::string color = se.color.empty() ? kPalette[si % 8] : se.color;
      std::string path;
      bool pen = false;
      for (size_t i = 0; i < se.x.size() && i < se.y.size(); ++i) {
        double y = se.y[i];
        if (!std::isfinite(y) || (p.log_y && y <= 0)) { pen = false; continue; }
        path += fmt::format("{}{:.2f},{:.2f} ", pen ? "L" : "M", X(se.x[i]), Y(ty(y)));
        pen = true;
      }
      if (se.x.size() == 1 && pen)
        s += fmt::format("<circle cx=\"{:.2f}\" cy=\"{:.2f}\" r=\"3\" fill=\"{}\"/>\n", X(se.x[0]), Y(ty(se.y[0])), color);
      s += fmt::format("<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\"/>\n", path, color);
      double ly = y0 + 12 + 18 * static_cast<double>(si);
      s += fmt::format("<line x1=\"{0}\" x2=\"{1}\" y1=\"{2:.2f}\" y2=\"{2:.2f}\" stroke=\"{3}\" stroke-width=\"3\"/>"
                       "<text x=\"{4}\" y=\"{5:.2f}\">{6}</text>\n",
                       x0 + pw + 10, x0 + pw + 30, ly, color, x0 + pw + 35, ly + 4, escape(se.name));
    }
  }
  s += "</svg>\n";
  return s;
}

}  // namespace pcm
