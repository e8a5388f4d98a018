// SyntheticDataset: deterministic random images and labels of any shape, so
// a recipe or a benchmark can run without its data set (the ImageNet recipes
// on a machine without ImageNet, CI's "every recipe takes a step"). Not for
// accuracy: the labels are index % classes.
#pragma once
#include "pactq/data/dataset.h"

namespace pactq::data {

class SyntheticDataset : public Dataset {
 public:
  // Shape and classes from options.synthetic; 512 training and 128 test images.
  SyntheticDataset(Split split, const DatasetOptions& options);
  int64_t size() const override { return size_; }
  Sample get(int64_t index) const override;
  int64_t label(int64_t index) const override;
  DatasetInfo info() const override { return info_; }

 private:
  DatasetInfo info_;
  int64_t size_ = 0;
  uint64_t stream_ = 0;
};

}  // namespace pactq::data
