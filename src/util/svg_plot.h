// Small line charts as standalone SVG (no dependencies): one or more panels stacked vertically, each
// with its own y axis, several named series, ticks and a legend. Used by `pcm plot` for training
// curves and by eval plots.
#pragma once
#include <string>
#include <vector>

namespace pcm {

struct SvgSeries {
  std::string name;
  std::vector<double> x, y;  // same length; non-finite y values break the line
  std::string color;         // "" = from the palette
};

struct SvgPanel {
  std::string title, x_label, y_label;
  std::vector<SvgSeries> series;
  bool log_y = false;
  std::vector<double> x_markers;  // vertical dashed lines (e.g. phase boundaries)
};

struct SvgPlotOptions {
  int width = 900, panel_height = 300;
  std::string title;
};

std::string render_svg_plot(const std::vector<SvgPanel>& panels, const SvgPlotOptions& options = {});

}  // namespace pcm
