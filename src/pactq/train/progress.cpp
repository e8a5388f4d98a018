#include "pactq/train/progress.h"

#include <unistd.h>

#include <cstdio>

#include "pactq/common/format.h"

namespace pactq::train {

std::string format_duration(double seconds) {
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) return pactq::format("{}h{:02d}m", s / 3600, (s % 3600) / 60);
  if (s >= 60) return pactq::format("{}m{:02d}s", s / 60, s % 60);
  return pactq::format("{}s", s);
}

ProgressBar::ProgressBar(std::string label, int64_t total, bool enabled)
    : label_(std::move(label)),
      total_(total),
      enabled_(enabled),
      tty_(::isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_ - std::chrono::seconds(1)) {}

void ProgressBar::update(int64_t done, const std::string& text) {
  if (!enabled_ || !tty_) return;
  const auto now = std::chrono::steady_clock::now();
  if (done < total_ && now - last_draw_ < std::chrono::milliseconds(200)) return;
  last_draw_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double frac = total_ > 0 ? static_cast<double>(done) / total_ : 0;
  const int width = 24;
  const int filled = static_cast<int>(frac * width);
  const std::string bar = std::string(filled, '#') + std::string(width - filled, '.');
  const double eta = done > 0 ? elapsed * (total_ - done) / done : 0;
  std::fprintf(stderr, "\r\033[K%s [%s] %lld/%lld %s eta %s", label_.c_str(), bar.c_str(),
               static_cast<long long>(done), static_cast<long long>(total_), text.c_str(),
               format_duration(eta).c_str());
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (enabled_ && tty_) {
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
  }
}

}  // namespace pactq::train
