#include "pactq/data/registry.h"

#include <algorithm>
#include <cctype>

#include "pactq/common/format.h"
#include "pactq/data/cifar.h"
#include "pactq/data/idx.h"
#include "pactq/data/image_folder.h"
#include "pactq/data/synthetic.h"
#include "pactq/data/transforms.h"

namespace pactq::data {

const std::vector<std::string>& dataset_names() {
  static const std::vector<std::string> names = {"cifar10",       "cifar100",    "mnist",
                                                 "fashion-mnist", "imagefolder", "synthetic"};
  return names;
}

std::string canonical_dataset_name(const std::string& name) {
  std::string key;
  for (unsigned char ch : name) {
    if (ch == '-' || ch == '_' || ch == ' ') continue;
    key.push_back(static_cast<char>(std::tolower(ch)));
  }
  if (key == "cifar10") return "cifar10";
  if (key == "cifar100") return "cifar100";
  if (key == "mnist") return "mnist";
  if (key == "fashionmnist") return "fashion-mnist";
  if (key == "imagefolder" || key == "imagenet") return "imagefolder";
  if (key == "synthetic") return "synthetic";
  return "";
}

std::string default_data_dir(const std::string& name) {
  return canonical_dataset_name(name) == "fashion-mnist" ? "/usr/share/datasets/fashion-mnist" : "";
}

std::shared_ptr<Dataset> open_dataset(const std::string& name, const std::string& dir, Split split,
                                      const DatasetOptions& options) {
  const std::string canon = canonical_dataset_name(name);
  if (canon.empty()) {
    std::string valid;
    for (const auto& n : dataset_names()) valid += (valid.empty() ? "" : ", ") + n;
    throw DataError(pactq::format("unknown dataset '{}'; valid names: {}", name, valid));
  }
  if (!options.train_files.empty() && canon != "cifar10" && canon != "cifar100") {
    throw DataError(
        pactq::format("--train-files: only the CIFAR readers take a list of training "
                      "files (dataset is {})",
                      canon));
  }
  if (canon == "synthetic") return std::make_shared<SyntheticDataset>(split, options);
  const std::string root = dir.empty() ? default_data_dir(canon) : dir;
  if (root.empty()) {
    throw DataError(
        pactq::format("dataset {}: no data directory given and no default location", canon));
  }
  if (canon == "cifar10")
    return std::make_shared<CifarDataset>(CifarVariant::Cifar10, root, split, options);
  if (canon == "cifar100")
    return std::make_shared<CifarDataset>(CifarVariant::Cifar100, root, split, options);
  if (canon == "mnist")
    return std::make_shared<IdxDataset>(IdxVariant::Mnist, root, split, options);
  if (canon == "fashion-mnist")
    return std::make_shared<IdxDataset>(IdxVariant::FashionMnist, root, split, options);
  return std::make_shared<ImageFolderDataset>(root, split, options);
}

std::unique_ptr<DataLoader> make_loader(const std::string& name, const std::string& dir,
                                        Split split, const DatasetOptions& options,
                                        const LoaderOptions& loader_options) {
  auto ds = open_dataset(name, dir, split, options);
  Pipeline pipeline = make_pipeline(ds->info(), split, options);
  return std::make_unique<DataLoader>(std::move(ds), std::move(pipeline), loader_options);
}

}  // namespace pactq::data
