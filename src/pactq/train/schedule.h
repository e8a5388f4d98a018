// Learning-rate schedules, as a pure function of fractional epoch.
//   multistep:60,120        x0.1 at epochs 60 and 120 (multistep:56,64@0.2 sets the factor)
//   step:50@0.5             x0.5 every 50 epochs
//   cosine                  cosine decay to 0 over the run
//   constant
// plus an optional linear warm-up from 0 over the first warmup_epochs.
#pragma once
#include <string>
#include <vector>

namespace pactq::train {

class LrSchedule {
 public:
  // Throws std::invalid_argument naming --schedule on a bad spec.
  LrSchedule(const std::string& spec, double base_lr, int total_epochs, double warmup_epochs = 0);
  double at(double epoch) const;  // epoch may be fractional (step / steps_per_epoch)
  const std::string& spec() const { return spec_; }

 private:
  enum class Kind { kMultiStep, kStep, kCosine, kConstant };
  std::string spec_;
  Kind kind_ = Kind::kConstant;
  double base_ = 0;
  int total_ = 1;
  double warmup_ = 0;
  double factor_ = 0.1;
  std::vector<double> milestones_;
  double period_ = 0;
};

}  // namespace pactq::train
