#include "pactq/data/dataset.h"

#include "pactq/common/format.h"

namespace pactq::data {

void fail(const std::string& path, const std::string& what) {
  throw DataError(pactq::format("{}: {}", path, what));
}

std::string split_name(Split split) {
  return split == Split::Train ? "train" : "test";
}

void apply_normalisation_override(DatasetInfo& info, const DatasetOptions& options) {
  auto check = [&](const std::vector<float>& v, const char* what) {
    if (!v.empty() && static_cast<int64_t>(v.size()) != info.channels) {
      throw DataError(
          pactq::format("dataset {}: normalisation {} has {} values, expected {} (one "
                        "per channel)",
                        info.name, what, v.size(), info.channels));
    }
  };
  check(options.mean, "mean");
  check(options.std, "std");
  for (float s : options.std) {
    if (!(s > 0.0f)) {
      throw DataError(
          pactq::format("dataset {}: normalisation std must be > 0, got {}", info.name, s));
    }
  }
  if (!options.mean.empty()) info.mean = options.mean;
  if (!options.std.empty()) info.std = options.std;
}

}  // namespace pactq::data
