// The dataset interface every reader implements: random access to uint8 CHW
// pixels and an int64 label, plus the facts a trainer needs (shape, classes,
// default normalisation).
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace pactq::data {

// Every data-stage failure (missing/truncated/wrong file, bad label, bad
// image). The message always names the file and what was wrong or expected.
class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws DataError("<path>: <what>").
[[noreturn]] void fail(const std::string& path, const std::string& what);

enum class Split { Train, Test };
std::string split_name(Split split);  // "train" / "test"

struct DatasetInfo {
  std::string name;  // canonical registry name: cifar10, cifar100, mnist, ...
  int64_t channels = 0;
  int64_t height = 0;  // 0 for variable-size sources (image folders)
  int64_t width = 0;
  int64_t num_classes = 0;
  std::vector<std::string> class_names;  // empty if unknown
  std::vector<float> mean;               // per channel, on pixels / 255
  std::vector<float> std;
};

// The images `synthetic` generates (set from the model by train/data_setup).
struct SyntheticShape {
  int64_t channels = 3;
  int64_t height = 32;
  int64_t width = 32;
  int64_t classes = 10;
};

struct DatasetOptions {
  // Normalisation override; empty = the dataset's default (see DatasetInfo).
  std::vector<float> mean;
  std::vector<float> std;
  // Image folders: skip undecodable files with a warning on stderr (naming
  // each one) instead of throwing.
  bool skip_bad_images = false;
  // Image folders: output size (train random-resized-crop and eval center
  // crop) and the shorter side the eval pipeline resizes to first.
  int64_t image_size = 224;
  int64_t resize_size = 256;
  // Augmentation overrides for the train pipeline; nullopt = dataset default
  // (cifar: pad 4 + flip; mnist-family: none; imagefolder: RRC + flip).
  std::optional<int64_t> pad;
  std::optional<bool> hflip;
  // false: the train split gets the eval pipeline (no augmentation).
  bool augment = true;
  // CIFAR: the training files to read, by name inside the data directory
  // (e.g. the exact data_batch_1..3.bin only); empty = every file of the split.
  std::vector<std::string> train_files;
  SyntheticShape synthetic;
};

struct Sample {
  at::Tensor image;  // uint8 [C, H, W], contiguous
  int64_t label = 0;
};

// Random access, thread-safe for concurrent get() calls.
class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual Sample get(int64_t index) const = 0;
  virtual int64_t label(int64_t index) const = 0;  // cheap, no decoding
  virtual DatasetInfo info() const = 0;
};

// Applies options.mean/std (if given) to info, checking the channel count.
void apply_normalisation_override(DatasetInfo& info, const DatasetOptions& options);

}  // namespace pactq::data
