// MNIST-family idx readers (MNIST, Fashion-MNIST): train-images-idx3-ubyte,
// train-labels-idx1-ubyte, t10k-* ; each raw or gzip (.gz), also accepting
// the "train-images.idx3-ubyte" spelling.
#pragma once
#include <string>
#include <vector>

#include "pactq/data/dataset.h"

namespace pactq::data {

// One decoded idx file of unsigned bytes.
struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;
};

// Reads an idx file (raw or gzip). expected_rank: 0 = any. Throws DataError
// naming path on a wrong magic, wrong rank, or a size that does not match the
// header.
IdxArray read_idx(const std::string& path, int expected_rank = 0);

enum class IdxVariant { Mnist, FashionMnist };

class IdxDataset : public Dataset {
 public:
  // Finds <prefix>-images-idx3-ubyte[.gz] and <prefix>-labels-idx1-ubyte[.gz]
  // in dir (prefix train / t10k).
  IdxDataset(IdxVariant variant, const std::string& dir, Split split,
             const DatasetOptions& options = {});
  // Explicit file paths.
  IdxDataset(IdxVariant variant, const std::string& images_path, const std::string& labels_path,
             const DatasetOptions& options = {});

  int64_t size() const override { return static_cast<int64_t>(labels_.size()); }
  Sample get(int64_t index) const override;
  int64_t label(int64_t index) const override;
  DatasetInfo info() const override { return info_; }

  // The path that exists for a base name (tries .gz and the dotted spelling);
  // throws DataError listing the candidates if none exists.
  static std::string find_file(const std::string& dir, const std::string& base);

 private:
  void load(const std::string& images_path, const std::string& labels_path);
  DatasetInfo info_;
  std::vector<uint8_t> pixels_;
  std::vector<int64_t> labels_;
};

}  // namespace pactq::data
