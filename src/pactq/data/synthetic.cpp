#include "pactq/data/synthetic.h"

#include "pactq/common/format.h"
#include "pactq/data/rng.h"

namespace pactq::data {

SyntheticDataset::SyntheticDataset(Split split, const DatasetOptions& options) {
  const SyntheticShape& s = options.synthetic;
  if (s.channels < 1 || s.height < 1 || s.width < 1 || s.classes < 1) {
    throw DataError(
        pactq::format("dataset synthetic: shape {}x{}x{} and {} classes must be positive",
                      s.channels, s.height, s.width, s.classes));
  }
  info_.name = "synthetic";
  info_.channels = s.channels;
  info_.height = s.height;
  info_.width = s.width;
  info_.num_classes = s.classes;
  info_.mean.assign(static_cast<size_t>(s.channels), 0.5f);
  info_.std.assign(static_cast<size_t>(s.channels), 0.29f);  // uniform pixels
  apply_normalisation_override(info_, options);
  size_ = split == Split::Train ? 512 : 128;
  stream_ = split == Split::Train ? 0x7472ULL : 0x7465ULL;
}

Sample SyntheticDataset::get(int64_t index) const {
  if (index < 0 || index >= size_) {
    throw DataError(pactq::format("dataset synthetic: index {} out of range", index));
  }
  Sample s;
  s.image = at::empty({info_.channels, info_.height, info_.width}, at::kByte);
  uint8_t* p = s.image.data_ptr<uint8_t>();
  Rng rng(mix_seed(stream_, static_cast<uint64_t>(index)));
  for (int64_t i = 0; i < s.image.numel(); ++i) p[i] = static_cast<uint8_t>(rng.below(256));
  s.label = label(index);
  return s;
}

int64_t SyntheticDataset::label(int64_t index) const {
  return index % info_.num_classes;
}

}  // namespace pactq::data
