// Dataset factory by name, and the one-call way to get a loader.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "pactq/data/dataset.h"
#include "pactq/data/loader.h"

namespace pactq::data {

// Canonical names accepted by open_dataset.
const std::vector<std::string>&
dataset_names();  // cifar10 cifar100 mnist fashion-mnist imagefolder synthetic

// Lower-cases and maps aliases (cifar-10, fashion_mnist, fashionmnist,
// image-folder, imagenet) to a canonical name; "" if unknown.
std::string canonical_dataset_name(const std::string& name);

// "/usr/share/datasets/fashion-mnist" for fashion-mnist, "" otherwise.
std::string default_data_dir(const std::string& name);

// Opens a dataset. An empty dir falls back to default_data_dir(name). Throws
// DataError listing the valid names for an unknown name, or naming the
// missing/bad file.
std::shared_ptr<Dataset> open_dataset(const std::string& name, const std::string& dir, Split split,
                                      const DatasetOptions& options = {});

// open_dataset + make_pipeline(info, split, options) + DataLoader. For
// Split::Train you normally want loader_options.shuffle = true.
std::unique_ptr<DataLoader> make_loader(const std::string& name, const std::string& dir,
                                        Split split, const DatasetOptions& options,
                                        const LoaderOptions& loader_options);

}  // namespace pactq::data
