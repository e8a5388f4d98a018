// ImageNet-layout image folders: DIR/train/<class>/*.{jpg,jpeg,png} and
// DIR/val/<class>/... (DIR/test/ is accepted when val/ is absent). Classes are
// the sorted subdirectory names of DIR/train (or of the split directory when
// there is no train/). Images are decoded on every get() at their own size;
// the transform pipeline resizes/crops them.
#pragma once
#include <atomic>
#include <string>
#include <vector>

#include "pactq/data/dataset.h"

namespace pactq::data {

class ImageFolderDataset : public Dataset {
 public:
  // Lists the split and checks every file's header. Undecodable files throw
  // DataError naming the file, unless options.skip_bad_images: then each one
  // is reported on stderr and left out (counted in skipped_files()).
  ImageFolderDataset(const std::string& dir, Split split, const DatasetOptions& options = {});

  int64_t size() const override { return static_cast<int64_t>(files_.size()); }
  // Decodes the image. A file that fails to decode only now (header fine,
  // body corrupt) throws DataError naming it, or with skip_bad_images is
  // reported on stderr and replaced by the next decodable sample (counted in
  // bad_decodes()).
  Sample get(int64_t index) const override;
  int64_t label(int64_t index) const override;
  DatasetInfo info() const override { return info_; }

  const std::string& path(int64_t index) const { return files_.at(index); }
  const std::string& split_dir() const { return split_dir_; }
  // Files left out when the folder was opened (skip_bad_images).
  const std::vector<std::string>& skipped_files() const { return skipped_; }
  int64_t bad_decodes() const { return bad_decodes_.load(); }

 private:
  DatasetInfo info_;
  std::string split_dir_;
  bool skip_bad_ = false;
  std::vector<std::string> files_;
  std::vector<int64_t> labels_;
  std::vector<std::string> skipped_;
  mutable std::atomic<int64_t> bad_decodes_{0};
};

}  // namespace pactq::data
