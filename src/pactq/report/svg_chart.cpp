#include "pactq/report/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace pactq::report {
namespace {

std::string num(double v) {  // a coordinate: 0.1 px is plenty
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// Estimated width of a label in the chart font (no font metrics in a static
// file; sans-serif averages about 0.6 em per character).
double text_width(const std::string& text, double font_px) {
  return 0.6 * font_px * static_cast<double>(text.size());
}

}  // namespace

Ticks nice_ticks(double lo, double hi, int count, bool integer) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) {
    lo = 0;
    hi = 1;
  }
  if (lo > hi) std::swap(lo, hi);
  count = std::max(1, count);
  if (hi - lo <= 1e-12 * std::max(1.0, std::fabs(lo))) {
    const double pad = integer ? 1.0 : (lo == 0 ? 1.0 : std::fabs(lo) * 0.05);
    lo -= pad;
    hi += pad;
  }
  const double raw = (hi - lo) / count;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  const double e = raw / power;
  double step = (e >= 7.07 ? 10 : e >= 3.16 ? 5 : e >= 1.41 ? 2 : 1) * power;
  if (integer) step = std::max(1.0, std::round(step));
  const double k0 = std::floor(lo / step + 1e-9);
  const double k1 = std::ceil(hi / step - 1e-9);
  const long n = std::min(1000L, std::max(1L, std::lround(k1 - k0)));
  Ticks t;
  t.step = step;
  for (long i = 0; i <= n; ++i) t.values.push_back((k0 + static_cast<double>(i)) * step);
  return t;
}

std::string format_tick(double value, double step) {
  if (step > 0 && std::fabs(value) < step * 1e-6) return "0";  // no "-0" or "1e-17"
  const int p = step > 0 ? static_cast<int>(std::floor(std::log10(step) + 1e-9)) : 0;
  const int mag = value != 0 ? static_cast<int>(std::floor(std::log10(std::fabs(value)))) : 0;
  char buf[48];
  if (p >= -6 && mag < 6) {
    std::snprintf(buf, sizeof buf, "%.*f", std::max(0, -p), value);
  } else {
    std::snprintf(buf, sizeof buf, "%.*e", std::clamp(mag - p, 0, 10), value);
  }
  return buf;
}

std::string polyline_path(const std::vector<double>& x, const std::vector<double>& y,
                          const LinearScale& sx, const LinearScale& sy) {
  std::string d;
  bool pen_down = false;
  const size_t n = std::min(x.size(), y.size());
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i]) || !std::isfinite(y[i])) {
      pen_down = false;
      continue;
    }
    if (!d.empty()) d += ' ';
    d += pen_down ? "L" : "M";
    d += num(sx(x[i])) + " " + num(sy(y[i]));
    pen_down = true;
  }
  return d;
}

std::string series_color(size_t index) {
  static const char* const kTableau[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                         "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  if (index < 10) return kTableau[index];
  // Golden-angle hues, alternating lightness, fixed saturation (HSL -> RGB).
  const double h = std::fmod(static_cast<double>(index - 10) * 137.508 + 15.0, 360.0);
  const double s = 0.65, l = (index % 2 == 0) ? 0.38 : 0.55;
  const double c = (1 - std::fabs(2 * l - 1)) * s;
  const double hp = h / 60.0;
  const double x = c * (1 - std::fabs(std::fmod(hp, 2.0) - 1));
  double r = 0, g = 0, b = 0;
  switch (static_cast<int>(hp)) {
    case 0:
      r = c, g = x;
      break;
    case 1:
      r = x, g = c;
      break;
    case 2:
      g = c, b = x;
      break;
    case 3:
      g = x, b = c;
      break;
    case 4:
      r = x, b = c;
      break;
    default:
      r = c, b = x;
      break;
  }
  const double m = l - c / 2;
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", static_cast<int>(std::lround((r + m) * 255)),
                static_cast<int>(std::lround((g + m) * 255)),
                static_cast<int>(std::lround((b + m) * 255)));
  return buf;
}

std::string series_dash(size_t index) {
  static const char* const kDashes[] = {"", "6 3", "2 2", "8 3 2 3"};
  return kDashes[(index / 10) % 4];
}

std::string xml_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += ch;
    }
  }
  return out;
}

std::string render_line_chart(const LineChart& chart) {
  constexpr double kLeft = 72, kRight = 16, kTop = 30, kAxisBelow = 42;
  constexpr double kFont = 11, kLegendFont = 11, kLegendRow = 18, kSwatch = 22;
  const double width = chart.width;
  const double plot_w = width - kLeft - kRight;
  const double plot_h = chart.plot_height;

  // Data ranges over the finite points.
  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo;
  double y_lo = x_lo, y_hi = -x_lo;
  size_t points = 0;
  for (const Series& s : chart.series) {
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      x_lo = std::min(x_lo, s.x[i]);
      x_hi = std::max(x_hi, s.x[i]);
      y_lo = std::min(y_lo, s.y[i]);
      y_hi = std::max(y_hi, s.y[i]);
      ++points;
    }
  }
  const Ticks xt = nice_ticks(x_lo, x_hi, 6, chart.integer_x);
  if (chart.y_from_zero && points > 0) {
    y_lo = std::min(y_lo, 0.0);
    y_hi = std::max(y_hi, 0.0);
  }
  const Ticks yt = nice_ticks(y_lo, y_hi, 5, false);
  const LinearScale sx{xt.lo(), xt.hi(), kLeft, kLeft + plot_w};
  const LinearScale sy{yt.lo(), yt.hi(), kTop + plot_h, kTop};

  // Legend layout: entries flow left to right and wrap.
  struct Placed {
    double x, y;
  };
  std::vector<Placed> legend_at;
  double lx = kLeft, ly = kTop + plot_h + kAxisBelow + 6;
  for (const Series& s : chart.series) {
    const double w = kSwatch + 6 + text_width(s.label, kLegendFont) + 14;
    if (lx > kLeft && lx + w > width - kRight) {
      lx = kLeft;
      ly += kLegendRow;
    }
    legend_at.push_back({lx, ly});
    lx += w;
  }
  const double height = (chart.series.empty() ? ly : ly + kLegendRow) + 4;

  std::string o;
  o += "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"" + num(width) +
       "\" height=\"" + num(height) + "\" viewBox=\"0 0 " + num(width) + " " + num(height) +
       "\" font-family=\"sans-serif\" font-size=\"" + num(kFont) + "\" role=\"img\">\n";
  o += "<title>" + xml_escape(chart.title) + "</title>\n";
  o += "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n";
  o += "<text class=\"chart-title\" x=\"" + num(width / 2) +
       "\" y=\"18\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">" +
       xml_escape(chart.title) + "</text>\n";

  // Grid, axes, ticks and their labels.
  o += "<g class=\"axis y-axis\" stroke=\"#e3e3e3\">\n";
  for (const double v : yt.values) {
    const double y = sy(v);
    o += "<line x1=\"" + num(kLeft) + "\" x2=\"" + num(kLeft + plot_w) + "\" y1=\"" + num(y) +
         "\" y2=\"" + num(y) + "\"/>";
    o += "<text x=\"" + num(kLeft - 6) + "\" y=\"" + num(y + 4) +
         "\" text-anchor=\"end\" stroke=\"none\" fill=\"#333333\">" + format_tick(v, yt.step) +
         "</text>\n";
  }
  o += "</g>\n<g class=\"axis x-axis\" stroke=\"#333333\">\n";
  for (const double v : xt.values) {
    const double x = sx(v);
    o += "<line x1=\"" + num(x) + "\" x2=\"" + num(x) + "\" y1=\"" + num(kTop + plot_h) +
         "\" y2=\"" + num(kTop + plot_h + 5) + "\"/>";
    o += "<text x=\"" + num(x) + "\" y=\"" + num(kTop + plot_h + 17) +
         "\" text-anchor=\"middle\" stroke=\"none\" fill=\"#333333\">" + format_tick(v, xt.step) +
         "</text>\n";
  }
  o += "</g>\n";
  o += "<path d=\"M" + num(kLeft) + " " + num(kTop) + " V" + num(kTop + plot_h) + " H" +
       num(kLeft + plot_w) + "\" fill=\"none\" stroke=\"#333333\"/>\n";
  o += "<text class=\"axis-label\" x=\"" + num(kLeft + plot_w / 2) + "\" y=\"" +
       num(kTop + plot_h + 34) + "\" text-anchor=\"middle\" fill=\"#333333\">" +
       xml_escape(chart.x_label) + "</text>\n";
  o += "<text class=\"axis-label\" transform=\"translate(14 " + num(kTop + plot_h / 2) +
       ") rotate(-90)\" text-anchor=\"middle\" fill=\"#333333\">" + xml_escape(chart.y_label) +
       "</text>\n";

  if (points == 0) {
    o += "<text x=\"" + num(kLeft + plot_w / 2) + "\" y=\"" + num(kTop + plot_h / 2) +
         "\" text-anchor=\"middle\" fill=\"#888888\" font-size=\"14\">no data</text>\n";
  }

  // The series, then the legend.
  for (size_t i = 0; i < chart.series.size(); ++i) {
    const Series& s = chart.series[i];
    const std::string color = s.color.empty() ? series_color(i) : s.color;
    const std::string dash =
        s.dash.empty() ? "" : " stroke-dasharray=\"" + xml_escape(s.dash) + "\"";
    o += "<g class=\"series\" data-series=\"" + xml_escape(s.id) + "\">";
    o += "<title>" + xml_escape(s.label) + "</title>";
    o += "<path d=\"" + polyline_path(s.x, s.y, sx, sy) + "\" fill=\"none\" stroke=\"" + color +
         "\" stroke-width=\"2\" stroke-linejoin=\"round\"" + dash + "/>";
    size_t finite = 0;
    for (size_t k = 0; k < std::min(s.x.size(), s.y.size()); ++k)
      finite += std::isfinite(s.x[k]) && std::isfinite(s.y[k]);
    if (finite <= 15) {  // markers show sparse data (and a lone point)
      for (size_t k = 0; k < std::min(s.x.size(), s.y.size()); ++k) {
        if (!std::isfinite(s.x[k]) || !std::isfinite(s.y[k])) continue;
        o += "<circle cx=\"" + num(sx(s.x[k])) + "\" cy=\"" + num(sy(s.y[k])) +
             "\" r=\"2.5\" fill=\"" + color + "\"/>";
      }
    }
    o += "</g>\n";
  }
  o += "<g class=\"legend\">\n";
  for (size_t i = 0; i < chart.series.size(); ++i) {
    const Series& s = chart.series[i];
    const std::string color = s.color.empty() ? series_color(i) : s.color;
    const std::string dash =
        s.dash.empty() ? "" : " stroke-dasharray=\"" + xml_escape(s.dash) + "\"";
    const Placed at = legend_at[i];
    o += "<g class=\"legend-entry\" data-legend=\"" + xml_escape(s.id) + "\"><line x1=\"" +
         num(at.x) + "\" x2=\"" + num(at.x + kSwatch) + "\" y1=\"" + num(at.y) + "\" y2=\"" +
         num(at.y) + "\" stroke=\"" + color + "\" stroke-width=\"3\"" + dash + "/><text x=\"" +
         num(at.x + kSwatch + 6) + "\" y=\"" + num(at.y + 4) + "\" fill=\"#222222\">" +
         xml_escape(s.label) + "</text></g>\n";
  }
  o += "</g>\n</svg>\n";
  return o;
}

}  // namespace pactq::report
