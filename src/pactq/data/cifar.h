// CIFAR-10 / CIFAR-100 binary-format readers (the "-binary" distributions).
// CIFAR-10: data_batch_1..5.bin (train) / test_batch.bin, records of
// 1 label byte + 3072 pixel bytes (1024 R, 1024 G, 1024 B, row-major 32x32).
// CIFAR-100: train.bin / test.bin, records of coarse + fine label bytes +
// 3072 pixel bytes; the fine label (100 classes) is used.
#pragma once
#include <string>
#include <vector>

#include "pactq/data/dataset.h"

namespace pactq::data {

enum class CifarVariant { Cifar10, Cifar100 };

class CifarDataset : public Dataset {
 public:
  static constexpr int64_t kPixels = 3 * 32 * 32;

  // dir holds the .bin files directly or in a cifar-10-batches-bin /
  // cifar-100-binary subdirectory. Throws DataError naming the file on a
  // missing/wrong-size file or an out-of-range label.
  CifarDataset(CifarVariant variant, const std::string& dir, Split split,
               const DatasetOptions& options = {});
  // Reads an explicit list of files (in order).
  CifarDataset(CifarVariant variant, const std::vector<std::string>& files,
               const DatasetOptions& options = {});

  int64_t size() const override { return static_cast<int64_t>(labels_.size()); }
  Sample get(int64_t index) const override;
  int64_t label(int64_t index) const override;
  DatasetInfo info() const override { return info_; }

  // Files that a split reads, relative to the data directory.
  static std::vector<std::string> split_files(CifarVariant variant, Split split);

 private:
  void load(const std::vector<std::string>& files);
  CifarVariant variant_;
  DatasetInfo info_;
  std::vector<uint8_t> pixels_;  // size() * kPixels, CHW per record
  std::vector<int64_t> labels_;
};

}  // namespace pactq::data
