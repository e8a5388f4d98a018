#include "pactq/data/idx.h"

#include <cstring>

#include "pactq/common/format.h"
#include "pactq/data/io.h"

namespace pactq::data {
namespace {

DatasetInfo base_info(IdxVariant variant) {
  DatasetInfo info;
  info.channels = 1;
  info.height = 28;
  info.width = 28;
  info.num_classes = 10;
  if (variant == IdxVariant::Mnist) {
    info.name = "mnist";
    for (int i = 0; i < 10; ++i) info.class_names.push_back(std::to_string(i));
    info.mean = {0.1307f};
    info.std = {0.3081f};
  } else {
    info.name = "fashion-mnist";
    info.class_names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                        "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    info.mean = {0.2860f};
    info.std = {0.3530f};
  }
  return info;
}

}  // namespace

IdxArray read_idx(const std::string& path, int expected_rank) {
  if (!file_exists(path)) fail(path, "missing idx file");
  const auto bytes = read_maybe_gzip(path);
  if (bytes.size() < 4) {
    fail(path, pactq::format("too short for an idx header ({} bytes)", bytes.size()));
  }
  const uint32_t magic = uint32_t{bytes[0]} << 24 | uint32_t{bytes[1]} << 16 |
                         uint32_t{bytes[2]} << 8 | uint32_t{bytes[3]};
  const int rank = bytes[3];
  if (bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 || rank == 0) {
    fail(path, pactq::format("bad idx magic 0x{:08x}, expected 0x0000080N (unsigned byte data, "
                             "N dimensions)",
                             magic));
  }
  if (expected_rank != 0 && rank != expected_rank) {
    fail(path, pactq::format("idx magic 0x{:08x} says {} dimensions, expected {} (0x{:08x})", magic,
                             rank, expected_rank, 0x800 + expected_rank));
  }
  const size_t header = 4 + 4 * static_cast<size_t>(rank);
  if (bytes.size() < header) {
    fail(path, pactq::format("truncated idx header: {} bytes, expected at least {}", bytes.size(),
                             header));
  }
  IdxArray out;
  size_t count = 1;
  for (int d = 0; d < rank; ++d) {
    const uint8_t* p = bytes.data() + 4 + 4 * d;
    const int64_t dim = int64_t{p[0]} << 24 | int64_t{p[1]} << 16 | int64_t{p[2]} << 8 | p[3];
    out.dims.push_back(dim);
    count *= static_cast<size_t>(dim);
  }
  if (bytes.size() - header != count) {
    std::string shape;
    for (auto d : out.dims) shape += (shape.empty() ? "" : "x") + std::to_string(d);
    fail(path, pactq::format("idx data has {} bytes after the header, expected {} for shape {}{}",
                             bytes.size() - header, count, shape,
                             bytes.size() - header < count ? " (truncated)" : ""));
  }
  out.data.assign(bytes.begin() + header, bytes.end());
  return out;
}

std::string IdxDataset::find_file(const std::string& dir, const std::string& base) {
  // base like "train-images-idx3-ubyte"; also try "train-images.idx3-ubyte".
  std::string dotted = base;
  auto pos = dotted.find("-idx");
  if (pos != std::string::npos) dotted[pos] = '.';
  const std::vector<std::string> candidates = {base + ".gz", base, dotted + ".gz", dotted};
  check_data_dir(dir, "idx data directory");
  for (const auto& c : candidates) {
    if (file_exists(join_path(dir, c))) return join_path(dir, c);
  }
  fail(join_path(dir, base),
       pactq::format("missing idx file (looked for {}, {}, {}, {} in {})", candidates[0],
                     candidates[1], candidates[2], candidates[3], dir));
}

IdxDataset::IdxDataset(IdxVariant variant, const std::string& dir, Split split,
                       const DatasetOptions& options)
    : info_(base_info(variant)) {
  apply_normalisation_override(info_, options);
  const std::string prefix = split == Split::Train ? "train" : "t10k";
  const std::string images = find_file(dir, prefix + "-images-idx3-ubyte");
  const std::string labels = find_file(dir, prefix + "-labels-idx1-ubyte");
  load(images, labels);
}

IdxDataset::IdxDataset(IdxVariant variant, const std::string& images_path,
                       const std::string& labels_path, const DatasetOptions& options)
    : info_(base_info(variant)) {
  apply_normalisation_override(info_, options);
  load(images_path, labels_path);
}

void IdxDataset::load(const std::string& images_path, const std::string& labels_path) {
  IdxArray images = read_idx(images_path, 3);
  IdxArray labels = read_idx(labels_path, 1);
  if (images.dims[0] != labels.dims[0]) {
    fail(images_path, pactq::format("holds {} images but labels file {} holds {} labels",
                                    images.dims[0], labels_path, labels.dims[0]));
  }
  if (images.dims[1] <= 0 || images.dims[2] <= 0) {
    fail(images_path, pactq::format("bad image size {}x{}", images.dims[1], images.dims[2]));
  }
  info_.height = images.dims[1];
  info_.width = images.dims[2];
  labels_.resize(labels.data.size());
  for (size_t i = 0; i < labels.data.size(); ++i) {
    if (labels.data[i] >= info_.num_classes) {
      fail(labels_path, pactq::format("label {} at index {} is out of range, expected 0..{}",
                                      labels.data[i], i, info_.num_classes - 1));
    }
    labels_[i] = labels.data[i];
  }
  pixels_ = std::move(images.data);
}

Sample IdxDataset::get(int64_t index) const {
  TORCH_CHECK(index >= 0 && index < size(), "IdxDataset index ", index, " out of range");
  const int64_t n = info_.height * info_.width;
  Sample s;
  s.image = at::empty({1, info_.height, info_.width}, at::kByte);
  std::memcpy(s.image.data_ptr<uint8_t>(), pixels_.data() + index * n, n);
  s.label = labels_[index];
  return s;
}

int64_t IdxDataset::label(int64_t index) const {
  TORCH_CHECK(index >= 0 && index < size(), "IdxDataset index ", index, " out of range");
  return labels_[index];
}

}  // namespace pactq::data
