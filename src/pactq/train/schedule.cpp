#include "pactq/train/schedule.h"

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace pactq::train {
namespace {
double parse_number(const std::string& text, const std::string& spec) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || !(v > 0)) {
    throw std::invalid_argument("--schedule '" + spec + "': '" + text +
                                "' is not a positive number");
  }
  return v;
}
}  // namespace

LrSchedule::LrSchedule(const std::string& spec, double base_lr, int total_epochs,
                       double warmup_epochs)
    : spec_(spec), base_(base_lr), total_(std::max(1, total_epochs)), warmup_(warmup_epochs) {
  std::string body = spec;
  const auto at_sign = body.find('@');
  if (at_sign != std::string::npos) {
    factor_ = parse_number(body.substr(at_sign + 1), spec);
    body = body.substr(0, at_sign);
  }
  const auto colon = body.find(':');
  const std::string name = body.substr(0, colon);
  const std::string args = colon == std::string::npos ? "" : body.substr(colon + 1);
  if (name == "multistep") {
    kind_ = Kind::kMultiStep;
    std::stringstream ss(args);
    std::string item;
    while (std::getline(ss, item, ',')) milestones_.push_back(parse_number(item, spec));
    if (milestones_.empty()) {
      throw std::invalid_argument("--schedule '" + spec +
                                  "': multistep needs milestones, e.g. multistep:60,120");
    }
  } else if (name == "step") {
    kind_ = Kind::kStep;
    period_ = parse_number(args, spec);
  } else if (name == "cosine" && args.empty()) {
    kind_ = Kind::kCosine;
  } else if (name == "constant" && args.empty()) {
    kind_ = Kind::kConstant;
  } else {
    throw std::invalid_argument("--schedule '" + spec +
                                "': expected multistep:E1,E2[@F], step:E[@F], cosine or constant");
  }
}

double LrSchedule::at(double epoch) const {
  double lr = base_;
  switch (kind_) {
    case Kind::kMultiStep:
      for (double m : milestones_) {
        if (epoch >= m) lr *= factor_;
      }
      break;
    case Kind::kStep:
      lr *= std::pow(factor_, std::floor(epoch / period_));
      break;
    case Kind::kCosine:
      lr *= 0.5 * (1.0 + std::cos(M_PI * std::min(1.0, epoch / total_)));
      break;
    case Kind::kConstant:
      break;
  }
  if (warmup_ > 0 && epoch < warmup_) lr *= (epoch + 1e-9) / warmup_;
  return lr;
}

}  // namespace pactq::train
