// Static SVG line charts for `pactq report`: linear scales, "nice" tick
// values, polyline paths, axes with tick labels, a title and a legend. Plain
// text out, no JavaScript, no fonts or files fetched: the SVG is inlined in
// one HTML page. Torch-free.
#pragma once
#include <string>
#include <vector>

namespace pactq::report {

// Tick values at round steps (1, 2 or 5 times a power of ten) covering
// [lo, hi]: the first tick is <= lo and the last >= hi, with about `count`
// intervals in between. With `integer` the step is at least 1 (epochs).
// A degenerate or non-finite range is widened first, so there are always at
// least two ticks.
struct Ticks {
  double step = 1;
  std::vector<double> values;
  double lo() const { return values.front(); }
  double hi() const { return values.back(); }
};
Ticks nice_ticks(double lo, double hi, int count = 5, bool integer = false);

// A tick label: as many decimals as the step needs (0.25 -> "0.25", 20 ->
// "20"), scientific notation for very small or very large magnitudes.
std::string format_tick(double value, double step);

// Maps [d0, d1] onto [r0, r1].
struct LinearScale {
  double d0, d1, r0, r1;
  double operator()(double v) const {
    return d1 == d0 ? (r0 + r1) / 2 : r0 + (v - d0) / (d1 - d0) * (r1 - r0);
  }
};

// The SVG path ("M x y L x y ...") through the points; a non-finite y ends
// the current piece, so a missing value leaves a gap instead of a dive to 0.
std::string polyline_path(const std::vector<double>& x, const std::vector<double>& y,
                          const LinearScale& sx, const LinearScale& sy);

// Distinguishable colours: the ten Tableau colours, then hues spread by the
// golden angle at alternating lightness. Dash patterns change every ten
// series so that series sharing a similar colour still differ.
std::string series_color(size_t index);
std::string series_dash(size_t index);  // "" = solid, else a stroke-dasharray

// Escapes & < > " ' for SVG/HTML text and attribute values.
std::string xml_escape(const std::string& text);

struct Series {
  std::string id;     // the data-series attribute (tests and readers find a series by it)
  std::string label;  // the legend text
  std::vector<double> x, y;
  std::string color;  // empty: series_color(position)
  std::string dash;   // empty: solid
};

struct LineChart {
  std::string title;
  std::string x_label = "epoch";
  std::string y_label;
  std::vector<Series> series;
  bool integer_x = true;
  bool y_from_zero = false;  // include 0 in the y range (learning rate)
  int width = 560;
  int plot_height = 240;  // the plot area; the legend adds rows below it
};

// One <svg> element. Every series is a <g class="series" data-series="ID">
// holding its path (and point markers when there are few points) and a
// <title> with its label (shown on hover). A chart without any finite point
// says "no data" in place of the lines.
std::string render_line_chart(const LineChart& chart);

}  // namespace pactq::report
