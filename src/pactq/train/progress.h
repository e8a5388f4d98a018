// A one-line live progress bar on stderr (redrawn in place when stderr is a
// terminal, at most ~5 times a second), and nothing in quiet mode.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace pactq::train {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, bool enabled);
  // done: units finished; text: the live numbers (loss, acc, img/s...).
  void update(int64_t done, const std::string& text);
  void finish();  // clears the line

 private:
  std::string label_;
  int64_t total_;
  bool enabled_;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

std::string format_duration(double seconds);  // 1h02m, 3m05s, 12s

}  // namespace pactq::train
