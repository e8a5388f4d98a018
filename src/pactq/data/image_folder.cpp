#include "pactq/data/image_folder.h"

#include <dirent.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "pactq/common/format.h"
#include "pactq/data/image_codec.h"
#include "pactq/data/io.h"

namespace pactq::data {
namespace {

// Sorted entries of dir; dirs=true lists subdirectories, else regular files.
std::vector<std::string> list_dir(const std::string& dir, bool dirs) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) fail(dir, "cannot open directory");
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.empty() || name[0] == '.') continue;
    const std::string full = join_path(dir, name);
    if (dirs ? dir_exists(full) : file_exists(full)) names.push_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

bool has_image_extension(const std::string& name) {
  auto dot = name.rfind('.');
  if (dot == std::string::npos) return false;
  std::string ext = name.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return ext == "jpg" || ext == "jpeg" || ext == "png";
}

}  // namespace

ImageFolderDataset::ImageFolderDataset(const std::string& dir, Split split,
                                       const DatasetOptions& options)
    : skip_bad_(options.skip_bad_images) {
  check_data_dir(dir, "image folder root");
  const std::string train_dir = join_path(dir, "train");
  if (split == Split::Train) {
    split_dir_ = train_dir;
    if (!dir_exists(split_dir_)) fail(split_dir_, "missing train/ directory of the image folder");
  } else {
    split_dir_ = join_path(dir, "val");
    if (!dir_exists(split_dir_) && dir_exists(join_path(dir, "test"))) {
      split_dir_ = join_path(dir, "test");
    }
    if (!dir_exists(split_dir_)) {
      fail(split_dir_, "missing val/ (or test/) directory of the image folder");
    }
  }
  const std::string class_dir = dir_exists(train_dir) ? train_dir : split_dir_;
  const auto classes = list_dir(class_dir, true);
  if (classes.empty()) fail(class_dir, "no class subdirectories found (expected <class>/*.jpg)");

  for (const auto& cls : list_dir(split_dir_, true)) {
    if (!std::binary_search(classes.begin(), classes.end(), cls)) {
      fail(join_path(split_dir_, cls),
           pactq::format("class directory not present in {} (classes come from there)", class_dir));
    }
  }

  info_.name = "imagefolder";
  info_.channels = 3;
  info_.num_classes = static_cast<int64_t>(classes.size());
  info_.class_names = classes;
  info_.mean = {0.485f, 0.456f, 0.406f};
  info_.std = {0.229f, 0.224f, 0.225f};
  apply_normalisation_override(info_, options);

  for (size_t c = 0; c < classes.size(); ++c) {
    const std::string cdir = join_path(split_dir_, classes[c]);
    if (!dir_exists(cdir)) continue;  // a class absent from this split
    for (const auto& name : list_dir(cdir, false)) {
      if (!has_image_extension(name)) continue;
      const std::string path = join_path(cdir, name);
      try {
        // Headers sit at the start; retry with the whole file if the prefix
        // was not enough (e.g. a large EXIF block before the JPEG frame).
        constexpr size_t kPrefix = 1 << 16;
        auto head = read_file_prefix(path, kPrefix);
        try {
          probe_image(head, path);
        } catch (const DataError&) {
          if (head.size() < kPrefix) throw;
          probe_image(read_file(path), path);
        }
      } catch (const DataError& e) {
        if (!skip_bad_) {
          throw DataError(std::string(e.what()) +
                          " (pass skip_bad_images / --skip-bad-images to skip such files)");
        }
        std::cerr << "pactq: warning: skipping bad image " << e.what() << std::endl;
        skipped_.push_back(path);
        continue;
      }
      files_.push_back(path);
      labels_.push_back(static_cast<int64_t>(c));
    }
  }
  if (files_.empty()) {
    fail(split_dir_,
         pactq::format("no decodable .jpg/.jpeg/.png images found{}",
                       skipped_.empty() ? "" : pactq::format(" ({} skipped)", skipped_.size())));
  }
}

Sample ImageFolderDataset::get(int64_t index) const {
  TORCH_CHECK(index >= 0 && index < size(), "ImageFolderDataset index ", index, " out of range");
  for (int64_t k = 0; k < size(); ++k) {
    const int64_t i = (index + k) % size();
    try {
      Sample s;
      s.image = decode_image(read_file(files_[i]), files_[i]);
      s.label = labels_[i];
      return s;
    } catch (const DataError& e) {
      if (!skip_bad_) throw;
      bad_decodes_.fetch_add(1);
      std::cerr << "pactq: warning: bad image, using the next one instead: " << e.what()
                << std::endl;
    }
  }
  fail(split_dir_, "no image of the split could be decoded");
}

int64_t ImageFolderDataset::label(int64_t index) const {
  TORCH_CHECK(index >= 0 && index < size(), "ImageFolderDataset index ", index, " out of range");
  return labels_[index];
}

}  // namespace pactq::data
