#include "pactq/data/cifar.h"

#include <cstring>
#include <fstream>

#include "pactq/common/format.h"
#include "pactq/data/io.h"

namespace pactq::data {
namespace {

const std::vector<std::string> kCifar10Classes = {
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};

std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

std::string resolve_dir(CifarVariant variant, const std::string& dir, Split split) {
  const std::string first = CifarDataset::split_files(variant, split).front();
  check_data_dir(dir, "CIFAR data directory");
  if (file_exists(join_path(dir, first))) return dir;
  const std::string sub = join_path(
      dir, variant == CifarVariant::Cifar10 ? "cifar-10-batches-bin" : "cifar-100-binary");
  if (file_exists(join_path(sub, first))) return sub;
  return dir;  // load() reports the missing file by name
}

DatasetInfo base_info(CifarVariant variant) {
  DatasetInfo info;
  info.channels = 3;
  info.height = 32;
  info.width = 32;
  if (variant == CifarVariant::Cifar10) {
    info.name = "cifar10";
    info.num_classes = 10;
    info.class_names = kCifar10Classes;
    info.mean = {0.4914f, 0.4822f, 0.4465f};
    info.std = {0.2470f, 0.2435f, 0.2616f};
  } else {
    info.name = "cifar100";
    info.num_classes = 100;
    info.mean = {0.5071f, 0.4865f, 0.4409f};
    info.std = {0.2673f, 0.2564f, 0.2762f};
  }
  return info;
}

}  // namespace

std::vector<std::string> CifarDataset::split_files(CifarVariant variant, Split split) {
  if (variant == CifarVariant::Cifar100) return {split == Split::Train ? "train.bin" : "test.bin"};
  if (split == Split::Test) return {"test_batch.bin"};
  std::vector<std::string> files;
  for (int i = 1; i <= 5; ++i) files.push_back(pactq::format("data_batch_{}.bin", i));
  return files;
}

CifarDataset::CifarDataset(CifarVariant variant, const std::string& dir, Split split,
                           const DatasetOptions& options)
    : variant_(variant), info_(base_info(variant)) {
  const std::string root = resolve_dir(variant, dir, split);
  std::vector<std::string> files;
  const bool chosen = split == Split::Train && !options.train_files.empty();
  for (const auto& f : chosen ? options.train_files : split_files(variant, split)) {
    files.push_back(join_path(root, f));
  }
  if (variant == CifarVariant::Cifar10) {
    auto names = read_lines(join_path(root, "batches.meta.txt"));
    if (names.size() == 10) info_.class_names = names;
  } else {
    auto names = read_lines(join_path(root, "fine_label_names.txt"));
    if (names.size() == 100) info_.class_names = names;
  }
  apply_normalisation_override(info_, options);
  load(files);
}

CifarDataset::CifarDataset(CifarVariant variant, const std::vector<std::string>& files,
                           const DatasetOptions& options)
    : variant_(variant), info_(base_info(variant)) {
  apply_normalisation_override(info_, options);
  load(files);
}

void CifarDataset::load(const std::vector<std::string>& files) {
  const int64_t label_bytes = variant_ == CifarVariant::Cifar10 ? 1 : 2;
  const int64_t record = label_bytes + kPixels;
  for (const auto& path : files) {
    if (!file_exists(path)) {
      fail(path,
           pactq::format("missing {} file (expected {} records of {} bytes)", info_.name,
                         variant_ == CifarVariant::Cifar10 ? "10000" : "50000/10000", record));
    }
    const auto bytes = read_file(path);
    const int64_t n = static_cast<int64_t>(bytes.size());
    if (n == 0 || n % record != 0) {
      fail(path, pactq::format("size {} bytes is not a positive multiple of the {} record size {} "
                               "({} label byte(s) + {} pixel bytes); truncated or not a {} file?",
                               n, info_.name, record, label_bytes, kPixels, info_.name));
    }
    const int64_t count = n / record;
    const size_t base = labels_.size();
    labels_.resize(base + count);
    pixels_.resize((base + count) * kPixels);
    for (int64_t r = 0; r < count; ++r) {
      const uint8_t* rec = bytes.data() + r * record;
      const int64_t lab = rec[label_bytes - 1];  // CIFAR-100: fine label is the 2nd byte
      if (lab >= info_.num_classes) {
        fail(path, pactq::format("record {} has label {}, expected 0..{}", r, lab,
                                 info_.num_classes - 1));
      }
      labels_[base + r] = lab;
      std::memcpy(pixels_.data() + (base + r) * kPixels, rec + label_bytes, kPixels);
    }
  }
}

Sample CifarDataset::get(int64_t index) const {
  TORCH_CHECK(index >= 0 && index < size(), "CifarDataset index ", index, " out of range");
  Sample s;
  s.image = at::empty({3, 32, 32}, at::kByte);
  std::memcpy(s.image.data_ptr<uint8_t>(), pixels_.data() + index * kPixels, kPixels);
  s.label = labels_[index];
  return s;
}

int64_t CifarDataset::label(int64_t index) const {
  TORCH_CHECK(index >= 0 && index < size(), "CifarDataset index ", index, " out of range");
  return labels_[index];
}

}  // namespace pactq::data
