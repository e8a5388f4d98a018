// Tests for the data stage (pactq::data): readers, transforms, loader.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iterator>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "pactq/data/cifar.h"
#include "pactq/data/dataset.h"
#include "pactq/data/idx.h"
#include "pactq/data/image_codec.h"
#include "pactq/data/image_folder.h"
#include "pactq/data/io.h"
#include "pactq/data/loader.h"
#include "pactq/data/registry.h"
#include "pactq/data/transforms.h"
#include "test_env.h"

namespace fs = std::filesystem;
using namespace pactq::data;

namespace {

const std::string kCifarDir = pactq::test::kCifar;
const std::string kFashionDir = pactq::test::kFashion;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "pactq_data_XXXXXX").string();
    char* p = ::mkdtemp(tmpl.data());
    if (!p) throw std::runtime_error("mkdtemp failed");
    path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string sub(const std::string& rel) const {
    fs::path p = fs::path(path_) / rel;
    fs::create_directories(p.parent_path());
    return p.string();
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Expects `fn` to throw a std::runtime_error whose message contains every
// needle; returns the message.
template <typename Fn>
std::string expect_error(Fn&& fn, const std::vector<std::string>& needles) {
  try {
    fn();
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    for (const auto& n : needles)
      EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not in: " << msg;
    return msg;
  }
  ADD_FAILURE() << "expected an exception";
  return "";
}

uint8_t cifar_pixel(int r, int c, int y, int x) {
  return static_cast<uint8_t>(r * 7 + c * 80 + y * 3 + x);
}

std::vector<uint8_t> cifar_records(int first, int n, int label_bytes, int num_classes) {
  std::vector<uint8_t> out;
  for (int r = first; r < first + n; ++r) {
    if (label_bytes == 2) out.push_back(static_cast<uint8_t>(r % 20));  // coarse
    out.push_back(static_cast<uint8_t>(r % num_classes));
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32; ++x) out.push_back(cifar_pixel(r, c, y, x));
  }
  return out;
}

std::vector<uint8_t> be32(uint32_t v) {
  return {static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
          static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
}

std::vector<uint8_t> idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data,
                               uint32_t magic = 0) {
  std::vector<uint8_t> out = be32(magic ? magic : 0x800 + static_cast<uint32_t>(dims.size()));
  for (auto d : dims) {
    auto b = be32(d);
    out.insert(out.end(), b.begin(), b.end());
  }
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

// n images of h x w: pixel = i * 10 + y * w + x; label = (i * 3) % 10.
void write_idx_pair(const TempDir& t, const std::string& prefix, int n, int h, int w, bool gz) {
  std::vector<uint8_t> px, lab;
  for (int i = 0; i < n; ++i) {
    lab.push_back(static_cast<uint8_t>((i * 3) % 10));
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) px.push_back(static_cast<uint8_t>(i * 10 + y * w + x));
  }
  auto img = idx_bytes({uint32_t(n), uint32_t(h), uint32_t(w)}, px);
  auto lb = idx_bytes({uint32_t(n)}, lab);
  const std::string ext = gz ? ".gz" : "";
  write_file(t.sub(prefix + "-images-idx3-ubyte" + ext), gz ? gzip(img) : img);
  write_file(t.sub(prefix + "-labels-idx1-ubyte" + ext), gz ? gzip(lb) : lb);
}

at::Tensor solid(int64_t c, int64_t h, int64_t w, std::vector<int> rgb) {
  at::Tensor t = at::empty({c, h, w}, at::kByte);
  for (int64_t k = 0; k < c; ++k) t[k].fill_(rgb[k]);
  return t;
}

at::Tensor gradient(int64_t c, int64_t h, int64_t w) {
  at::Tensor t = at::empty({c, h, w}, at::kByte);
  auto a = t.accessor<uint8_t, 3>();
  for (int64_t k = 0; k < c; ++k)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) a[k][y][x] = static_cast<uint8_t>(k * 60 + y * 11 + x * 5);
  return t;
}

// In-memory dataset: image i is C x H x W of random bytes seeded by i, plus a
// marker pixel [0][0][0] = i % 256; label i % 10. Optional delay / failure.
class MemDataset : public Dataset {
 public:
  MemDataset(int64_t n, int64_t c, int64_t h, int64_t w, int fail_at = -1, int sleep_us = 0)
      : n_(n), c_(c), h_(h), w_(w), fail_at_(fail_at), sleep_us_(sleep_us) {}
  int64_t size() const override { return n_; }
  Sample get(int64_t i) const override {
    if (i == fail_at_) fail("mem://" + std::to_string(i), "injected failure");
    if (sleep_us_) std::this_thread::sleep_for(std::chrono::microseconds(sleep_us_));
    Sample s;
    s.image = at::empty({c_, h_, w_}, at::kByte);
    Rng rng(i + 1000);
    uint8_t* p = s.image.data_ptr<uint8_t>();
    for (int64_t k = 0; k < c_ * h_ * w_; ++k) p[k] = static_cast<uint8_t>(rng.next());
    p[0] = static_cast<uint8_t>(i % 256);
    s.label = i % 10;
    return s;
  }
  int64_t label(int64_t i) const override { return i % 10; }
  DatasetInfo info() const override {
    DatasetInfo d;
    d.name = "mem";
    d.channels = c_;
    d.height = h_;
    d.width = w_;
    d.num_classes = 10;
    d.mean.assign(c_, 0.0f);
    d.std.assign(c_, 1.0f);
    return d;
  }

 private:
  int64_t n_, c_, h_, w_;
  int fail_at_, sleep_us_;
};

Pipeline identity_pipeline(const Dataset& ds) {
  return make_pipeline(ds.info(), Split::Test);
}

// Recovers the dataset index from the marker pixel of an identity-pipeline batch.
std::vector<int64_t> marker_indices(const Batch& b) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < b.images.size(0); ++i) {
    out.push_back(std::lround(b.images[i][0][0][0].item<float>() * 255.0f));
  }
  return out;
}

std::vector<Batch> run_epoch(DataLoader& loader, int64_t epoch, int64_t first = 0) {
  std::vector<Batch> out;
  loader.start_epoch(epoch, first);
  while (auto b = loader.next()) out.push_back(std::move(*b));
  return out;
}

}  // namespace

// ---------------------------------------------------------------- CIFAR

TEST(DataCifar, Cifar10RoundTripChwOrder) {
  TempDir t;
  write_file(t.sub("test_batch.bin"), cifar_records(0, 3, 1, 10));
  for (int i = 1; i <= 5; ++i) {
    write_file(t.sub("data_batch_" + std::to_string(i) + ".bin"), cifar_records(10 * i, 2, 1, 10));
  }
  CifarDataset test(CifarVariant::Cifar10, t.path(), Split::Test);
  ASSERT_EQ(test.size(), 3);
  EXPECT_EQ(test.info().num_classes, 10);
  EXPECT_EQ(test.info().class_names.at(3), "cat");
  for (int r = 0; r < 3; ++r) {
    Sample s = test.get(r);
    ASSERT_EQ(s.image.sizes(), (at::IntArrayRef{3, 32, 32}));
    EXPECT_EQ(s.label, r % 10);
    auto a = s.image.accessor<uint8_t, 3>();
    for (int c = 0; c < 3; ++c)
      for (int y : {0, 5, 31})
        for (int x : {0, 17, 31}) ASSERT_EQ(a[c][y][x], cifar_pixel(r, c, y, x)) << c << y << x;
  }
  CifarDataset train(CifarVariant::Cifar10, t.path(), Split::Train);
  ASSERT_EQ(train.size(), 10);
  // data_batch_1 first, records in file order.
  EXPECT_EQ(train.get(0).image[2][3][4].item<uint8_t>(), cifar_pixel(10, 2, 3, 4));
  EXPECT_EQ(train.get(9).label, 51 % 10);
  EXPECT_EQ(train.get(9).image[1][0][1].item<uint8_t>(), cifar_pixel(51, 1, 0, 1));
}

TEST(DataCifar, Cifar100UsesFineLabel) {
  TempDir t;
  write_file(t.sub("cifar-100-binary/test.bin"), cifar_records(90, 4, 2, 100));
  CifarDataset ds(CifarVariant::Cifar100, t.path(), Split::Test);  // finds the subdirectory
  ASSERT_EQ(ds.size(), 4);
  EXPECT_EQ(ds.info().num_classes, 100);
  EXPECT_EQ(ds.get(3).label, 93);
  EXPECT_EQ(ds.get(3).image[0][31][31].item<uint8_t>(), cifar_pixel(93, 0, 31, 31));
  auto opened = open_dataset("cifar-100", t.path(), Split::Test);
  EXPECT_EQ(opened->info().name, "cifar100");
}

TEST(DataCifar, BadInputsNameTheFile) {
  TempDir t;
  const std::string missing_dir = t.path() + "/nope";
  expect_error([&] { CifarDataset(CifarVariant::Cifar10, missing_dir, Split::Test); },
               {missing_dir});
  expect_error([&] { CifarDataset(CifarVariant::Cifar10, t.path(), Split::Test); },
               {t.path() + "/test_batch.bin", "missing"});
  auto bytes = cifar_records(0, 2, 1, 10);
  bytes.pop_back();
  write_file(t.sub("test_batch.bin"), bytes);
  expect_error([&] { CifarDataset(CifarVariant::Cifar10, t.path(), Split::Test); },
               {t.path() + "/test_batch.bin", "3073"});
  bytes = cifar_records(0, 2, 1, 10);
  bytes[3073] = 10;  // second record's label
  write_file(t.sub("test_batch.bin"), bytes);
  expect_error([&] { CifarDataset(CifarVariant::Cifar10, t.path(), Split::Test); },
               {t.path() + "/test_batch.bin", "label 10"});
  write_file(t.sub("c100/test.bin"), cifar_records(0, 1, 1, 10));  // CIFAR-10 record size
  expect_error([&] { CifarDataset(CifarVariant::Cifar100, t.path() + "/c100", Split::Test); },
               {t.path() + "/c100/test.bin", "3074"});
}

TEST(DataCifar, RealCifar10TestBatch) {
  if (!fs::exists(kCifarDir + "/test_batch.bin")) PACTQ_SKIP_MISSING("no " << kCifarDir);
  auto ds = open_dataset("cifar10", kCifarDir, Split::Test);
  ASSERT_EQ(ds->size(), 10000);
  std::vector<int> hist(10, 0);
  for (int64_t i = 0; i < ds->size(); ++i) ++hist.at(ds->label(i));
  for (int c = 0; c < 10; ++c) EXPECT_EQ(hist[c], 1000) << "class " << c;
  EXPECT_EQ(ds->info().class_names.at(0), "airplane");
  EXPECT_EQ(ds->info().class_names.at(9), "truck");
  Sample s = ds->get(0);
  EXPECT_EQ(s.label, 3);  // the first CIFAR-10 test image is a cat
  EXPECT_GT(s.image.to(at::kFloat).std().item<float>(), 10.0f);
}

// ---------------------------------------------------------------- idx

TEST(DataIdx, RawAndGzipRoundTrip) {
  TempDir t;
  write_idx_pair(t, "train", 5, 4, 3, /*gz=*/false);
  write_idx_pair(t, "t10k", 2, 4, 3, /*gz=*/true);
  IdxDataset train(IdxVariant::Mnist, t.path(), Split::Train);
  IdxDataset test(IdxVariant::FashionMnist, t.path(), Split::Test);
  ASSERT_EQ(train.size(), 5);
  ASSERT_EQ(test.size(), 2);
  EXPECT_EQ(train.info().height, 4);
  EXPECT_EQ(train.info().width, 3);
  EXPECT_EQ(test.info().name, "fashion-mnist");
  EXPECT_EQ(test.info().class_names.at(9), "Ankle boot");
  for (int i = 0; i < 5; ++i) {
    Sample s = train.get(i);
    ASSERT_EQ(s.image.sizes(), (at::IntArrayRef{1, 4, 3}));
    EXPECT_EQ(s.label, (i * 3) % 10);
    EXPECT_EQ(s.image[0][2][1].item<uint8_t>(), i * 10 + 2 * 3 + 1);
  }
  EXPECT_EQ(test.get(1).image[0][3][2].item<uint8_t>(), 10 + 11);
  IdxArray a = read_idx(t.path() + "/t10k-images-idx3-ubyte.gz", 3);
  EXPECT_EQ(a.dims, (std::vector<int64_t>{2, 4, 3}));
}

TEST(DataIdx, BadInputsNameTheFile) {
  TempDir t;
  const std::string img = t.sub("train-images-idx3-ubyte");
  const std::string lab = t.sub("train-labels-idx1-ubyte");
  // Missing files.
  expect_error([&] { IdxDataset(IdxVariant::Mnist, t.path(), Split::Train); }, {img, "missing"});
  // Wrong magic.
  write_file(img, idx_bytes({2, 2, 2}, std::vector<uint8_t>(8, 1), 0x12345678));
  write_file(lab, idx_bytes({2}, {1, 2}));
  expect_error([&] { IdxDataset(IdxVariant::Mnist, img, lab); }, {img, "magic"});
  // Labels file given where images are expected (rank 1 vs 3).
  expect_error([&] { IdxDataset(IdxVariant::Mnist, lab, lab); }, {lab, "3"});
  // Count mismatch between images and labels.
  write_file(img, idx_bytes({3, 2, 2}, std::vector<uint8_t>(12, 1)));
  expect_error([&] { IdxDataset(IdxVariant::Mnist, img, lab); },
               {img, lab, "3 images", "2 labels"});
  // Data shorter than the header says.
  write_file(img, idx_bytes({2, 2, 2}, std::vector<uint8_t>(7, 1)));
  expect_error([&] { IdxDataset(IdxVariant::Mnist, img, lab); }, {img, "truncated"});
  // Label out of range.
  write_file(img, idx_bytes({2, 2, 2}, std::vector<uint8_t>(8, 1)));
  write_file(lab, idx_bytes({2}, {1, 12}));
  expect_error([&] { IdxDataset(IdxVariant::Mnist, img, lab); }, {lab, "label 12"});
  // Truncated gzip.
  const std::string gz = t.sub("g/train-images-idx3-ubyte.gz");
  auto z = gzip(idx_bytes({50, 8, 8}, std::vector<uint8_t>(3200, 7)));
  z.resize(z.size() / 2);
  write_file(gz, z);
  expect_error([&] { read_idx(gz, 3); }, {gz, "truncated gzip"});
}

TEST(DataIdx, RealFashionMnist) {
  if (!fs::exists(kFashionDir + "/t10k-images-idx3-ubyte.gz")) PACTQ_SKIP_MISSING("not installed");
  EXPECT_EQ(default_data_dir("fashion-mnist"), kFashionDir);
  auto test = open_dataset("fashion-mnist", "", Split::Test);  // default directory
  ASSERT_EQ(test->size(), 10000);
  EXPECT_EQ(test->info().height, 28);
  EXPECT_EQ(test->info().width, 28);
  std::vector<int> hist(10, 0);
  for (int64_t i = 0; i < test->size(); ++i) ++hist.at(test->label(i));
  for (int c = 0; c < 10; ++c) EXPECT_EQ(hist[c], 1000);
  auto train = open_dataset("fashion-mnist", kFashionDir, Split::Train);
  ASSERT_EQ(train->size(), 60000);
  EXPECT_EQ(train->get(59999).image.sizes(), (at::IntArrayRef{1, 28, 28}));
}

// ---------------------------------------------------------------- image folder

TEST(DataImageFolder, JpegAndPngClassesFromDirs) {
  TempDir t;
  write_file(t.sub("train/dog/b.png"), encode_png(gradient(3, 8, 10)));
  write_file(t.sub("train/cat/a.jpg"), encode_jpeg(solid(3, 12, 16, {200, 50, 30})));
  write_file(t.sub("train/cat/c.JPEG"), encode_jpeg(solid(1, 9, 9, {90})));  // greyscale
  write_file(t.sub("train/cat/notes.txt"), {'h', 'i'});                      // ignored
  write_file(t.sub("val/dog/v.png"), encode_png(solid(1, 5, 6, {77})));
  ImageFolderDataset train(t.path(), Split::Train);
  EXPECT_EQ(train.info().class_names, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(train.info().num_classes, 2);
  ASSERT_EQ(train.size(), 3);
  // Files sorted within classes: cat/a.jpg, cat/c.JPEG, dog/b.png.
  Sample a = train.get(0);
  EXPECT_EQ(a.label, 0);
  ASSERT_EQ(a.image.sizes(), (at::IntArrayRef{3, 12, 16}));
  auto diff = (a.image.to(at::kInt) - solid(3, 12, 16, {200, 50, 30}).to(at::kInt)).abs();
  EXPECT_LE(diff.max().item<int>(), 6);
  Sample g = train.get(1);
  ASSERT_EQ(g.image.sizes(), (at::IntArrayRef{3, 9, 9}));
  EXPECT_NEAR(g.image.to(at::kFloat).mean().item<float>(), 90.0f, 3.0f);
  Sample b = train.get(2);
  EXPECT_EQ(b.label, 1);
  ASSERT_EQ(b.image.sizes(), (at::IntArrayRef{3, 8, 10}));
  EXPECT_TRUE(b.image.equal(gradient(3, 8, 10)));  // PNG is lossless
  ImageFolderDataset val(t.path(), Split::Test);
  ASSERT_EQ(val.size(), 1);
  EXPECT_EQ(val.get(0).label, 1);  // class index from train/
  EXPECT_EQ(val.get(0).image[2][4][5].item<uint8_t>(), 77);
}

TEST(DataImageFolder, CorruptImageErrorsOrIsSkipped) {
  TempDir t;
  write_file(t.sub("train/a/good.png"), encode_png(solid(3, 4, 4, {1, 2, 3})));
  const std::string bad = t.sub("train/b/bad.jpg");
  write_file(bad, {'n', 'o', 't', ' ', 'a', ' ', 'j', 'p', 'e', 'g'});
  const std::string bad2 = t.sub("train/b/bad2.jpg");
  auto trunc = encode_jpeg(gradient(3, 16, 16));
  trunc.resize(20);  // SOI and part of a header
  write_file(bad2, trunc);
  expect_error([&] { ImageFolderDataset(t.path(), Split::Train); }, {bad, "skip"});
  DatasetOptions opt;
  opt.skip_bad_images = true;
  testing::internal::CaptureStderr();
  ImageFolderDataset ds(t.path(), Split::Train, opt);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find(bad), std::string::npos) << err;
  EXPECT_NE(err.find(bad2), std::string::npos) << err;
  EXPECT_EQ(ds.size(), 1);
  EXPECT_EQ(ds.skipped_files().size(), 2u);
  EXPECT_EQ(ds.info().num_classes, 2);  // the class stays, it just has no images
  // A file that breaks after the folder was opened: named at get() time.
  write_file(t.sub("train/a/good.png"), {0x89, 'P', 'N', 'G', 0, 0});
  expect_error([&] { ImageFolderDataset(t.path(), Split::Train, opt).size(); },
               {t.path() + "/train"});
  expect_error([&] { ds.get(0); }, {});  // skip mode, but nothing decodable left
}

TEST(DataImageFolder, BadLayoutNamesThePath) {
  TempDir t;
  expect_error([&] { ImageFolderDataset(t.path() + "/x", Split::Train); }, {t.path() + "/x"});
  expect_error([&] { ImageFolderDataset(t.path(), Split::Train); }, {t.path() + "/train"});
  fs::create_directories(t.path() + "/train");
  expect_error([&] { ImageFolderDataset(t.path(), Split::Train); }, {t.path() + "/train", "class"});
  expect_error([&] { ImageFolderDataset(t.path(), Split::Test); }, {t.path() + "/val"});
  write_file(t.sub("img/train/a/x.png"), encode_png(solid(3, 2, 2, {0, 0, 0})));
  const std::string png = t.sub("img/val/a/y.png");
  auto bytes = encode_png(gradient(3, 40, 40));
  bytes.resize(bytes.size() - 30);  // cut inside the pixel data
  write_file(png, bytes);
  ImageFolderDataset val(t.path() + "/img", Split::Test);  // header is fine
  expect_error([&] { val.get(0); }, {png});
}

// ---------------------------------------------------------------- registry

TEST(DataRegistry, NamesDefaultsAndErrors) {
  expect_error([&] { open_dataset("cifar11", "/tmp", Split::Train); },
               {"cifar11", "cifar10", "cifar100", "mnist", "fashion-mnist", "imagefolder"});
  EXPECT_EQ(default_data_dir("fashion-mnist"), "/usr/share/datasets/fashion-mnist");
  EXPECT_EQ(default_data_dir("Fashion_MNIST"), "/usr/share/datasets/fashion-mnist");
  EXPECT_EQ(default_data_dir("cifar10"), "");
  EXPECT_EQ(canonical_dataset_name("CIFAR-10"), "cifar10");
  expect_error([&] { open_dataset("cifar10", "", Split::Train); }, {"cifar10", "directory"});
  TempDir t;
  write_file(t.sub("test_batch.bin"), cifar_records(0, 2, 1, 10));
  DatasetOptions opt;
  auto ds = open_dataset("cifar10", t.path(), Split::Test, opt);
  DatasetInfo info = ds->info();
  EXPECT_EQ(info.channels, 3);
  EXPECT_FLOAT_EQ(info.mean[0], 0.4914f);
  EXPECT_FLOAT_EQ(info.std[2], 0.2616f);
  opt.mean = {0.485f, 0.456f, 0.406f};
  opt.std = {0.229f, 0.224f, 0.225f};
  EXPECT_FLOAT_EQ(open_dataset("cifar10", t.path(), Split::Test, opt)->info().mean[1], 0.456f);
  opt.mean = {0.5f};
  expect_error([&] { open_dataset("cifar10", t.path(), Split::Test, opt); }, {"mean", "3"});
}

// ---------------------------------------------------------------- transforms

TEST(DataTransforms, FlipPadCropNormalize) {
  at::Tensor img = gradient(3, 5, 6);
  at::Tensor f = hflip(img);
  EXPECT_TRUE(f.equal(img.flip({2})));
  EXPECT_TRUE(hflip(f).equal(img));
  // Identity window and shifted windows.
  EXPECT_TRUE(pad_crop(img, 2, 2, 2).equal(img));
  at::Tensor s = pad_crop(img, 2, 0, 3);  // content moves down 2, left 1
  EXPECT_EQ(s.sizes(), img.sizes());
  auto a = s.accessor<uint8_t, 3>(), o = img.accessor<uint8_t, 3>();
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 5; ++y)
      for (int x = 0; x < 6; ++x) {
        const int sy = y - 2, sx = x + 1;
        const uint8_t want = (sy >= 0 && sy < 5 && sx < 6) ? o[c][sy][sx] : 0;
        ASSERT_EQ(a[c][y][x], want) << c << " " << y << " " << x;
      }
  at::Tensor n = normalize(solid(3, 2, 2, {255, 0, 51}), {0.5f, 0.5f, 0.2f}, {0.25f, 0.5f, 0.1f});
  EXPECT_FLOAT_EQ(n[0][1][1].item<float>(), 2.0f);
  EXPECT_FLOAT_EQ(n[1][0][0].item<float>(), -1.0f);
  EXPECT_NEAR(n[2][0][1].item<float>(), 0.0f, 1e-6);
}

TEST(DataTransforms, PipelineMatchesBuildingBlocks) {
  DatasetInfo info;
  info.name = "cifar10";
  info.channels = 3;
  info.height = 8;
  info.width = 8;
  info.mean = {0.1f, 0.2f, 0.3f};
  info.std = {0.5f, 0.6f, 0.7f};
  Pipeline train = make_pipeline(info, Split::Train);
  EXPECT_EQ(train.options().geometry, Geometry::PadCrop);
  EXPECT_EQ(train.options().pad, 4);
  EXPECT_TRUE(train.options().hflip);
  at::Tensor img = gradient(3, 8, 8);
  int flips = 0, shifted = 0;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    Rng r1(seed), r2(seed);
    at::Tensor out = train(img, r1);
    EXPECT_TRUE(out.equal(train(img, r2)));  // a pure function of the seed
    bool found = false;
    for (int top = 0; top <= 8 && !found; ++top)
      for (int left = 0; left <= 8 && !found; ++left)
        for (bool flip : {false, true}) {
          at::Tensor ref = pad_crop(img, 4, top, left);
          if (flip) ref = hflip(ref);
          if (normalize(ref, info.mean, info.std).allclose(out, 0, 1e-6)) {
            found = true;
            flips += flip;
            shifted += (top != 4 || left != 4);
            break;
          }
        }
    EXPECT_TRUE(found) << "seed " << seed;
  }
  EXPECT_GT(flips, 5);
  EXPECT_GT(shifted, 20);
  Pipeline eval = make_pipeline(info, Split::Test);
  Rng r(1);
  EXPECT_TRUE(eval(img, r).allclose(normalize(img, info.mean, info.std)));
  DatasetOptions no_aug;
  no_aug.pad = 0;
  no_aug.hflip = false;
  EXPECT_EQ(make_pipeline(info, Split::Train, no_aug).options().geometry, Geometry::Identity);
}

TEST(DataTransforms, ResizeAndImageFolderPipelines) {
  // Constant stays constant; 2x downscale of a checkerboard averages.
  EXPECT_TRUE(resize(solid(3, 7, 9, {10, 20, 30}), 20, 5).equal(solid(3, 20, 5, {10, 20, 30})));
  at::Tensor checker = at::empty({1, 8, 8}, at::kByte);
  auto c = checker.accessor<uint8_t, 3>();
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 8; ++x) c[0][y][x] = ((x + y) % 2) ? 200 : 0;
  at::Tensor small = resize(checker, 4, 4);
  EXPECT_LE((small.to(at::kInt) - 100).abs().max().item<int>(), 3);  // edges: +-2
  at::Tensor up = resize(gradient(1, 4, 4), 8, 8);                   // monotone rows stay monotone
  for (int x = 1; x < 8; ++x)
    EXPECT_GE(up[0][3][x].item<uint8_t>(), up[0][3][x - 1].item<uint8_t>());
  EXPECT_EQ(resize_shorter(solid(3, 30, 60, {0, 0, 0}), 10).sizes(), (at::IntArrayRef{3, 10, 20}));
  EXPECT_TRUE(
      center_crop(gradient(1, 6, 6), 2, 2).equal(gradient(1, 6, 6).slice(1, 2, 4).slice(2, 2, 4)));

  DatasetInfo info;
  info.name = "imagefolder";
  info.channels = 3;
  info.mean = {0.485f, 0.456f, 0.406f};
  info.std = {0.229f, 0.224f, 0.225f};
  DatasetOptions opt;
  opt.image_size = 32;
  opt.resize_size = 40;
  Pipeline eval = make_pipeline(info, Split::Test, opt);
  Pipeline train = make_pipeline(info, Split::Train, opt);
  EXPECT_EQ(eval.options().geometry, Geometry::ResizeCenterCrop);
  EXPECT_EQ(train.options().geometry, Geometry::RandomResizedCrop);
  at::Tensor img = solid(3, 50, 70, {124, 116, 104});
  Rng r(3);
  at::Tensor e = eval(img, r);
  ASSERT_EQ(e.sizes(), (at::IntArrayRef{3, 32, 32}));
  EXPECT_NEAR(e[0].mean().item<float>(), (124 / 255.0f - 0.485f) / 0.229f, 1e-4);
  at::Tensor tr = train(img, r);
  ASSERT_EQ(tr.sizes(), (at::IntArrayRef{3, 32, 32}));
  EXPECT_NEAR(tr[2].max().item<float>(), (104 / 255.0f - 0.406f) / 0.225f, 1e-4);
  // Eval crop equals resize_shorter + center_crop within rounding.
  at::Tensor g = gradient(3, 50, 70);
  at::Tensor ref = normalize(center_crop(resize_shorter(g, 40), 32, 32), info.mean, info.std);
  EXPECT_LT((eval(g, r) - ref).abs().max().item<float>(), 0.03f);
}

// ---------------------------------------------------------------- loader

TEST(DataLoader, EverySampleOncePerEpochShuffled) {
  auto ds = std::make_shared<MemDataset>(103, 1, 4, 4);
  LoaderOptions o;
  o.batch_size = 10;
  o.shuffle = true;
  o.seed = 7;
  DataLoader loader(ds, identity_pipeline(*ds), o);
  EXPECT_EQ(loader.num_batches(), 11);
  std::vector<int64_t> epoch0;
  for (int64_t e : {0, 1}) {
    auto batches = run_epoch(loader, e);
    ASSERT_EQ(batches.size(), 11u);
    EXPECT_EQ(batches.back().images.size(0), 3);
    std::vector<int64_t> seen;
    for (const auto& b : batches) {
      EXPECT_EQ(b.images.dtype(), at::kFloat);
      EXPECT_EQ(b.labels.dtype(), at::kLong);
      EXPECT_EQ(b.images.size(1), 1);
      auto idx = marker_indices(b);
      for (size_t i = 0; i < idx.size(); ++i) EXPECT_EQ(b.labels[i].item<int64_t>(), idx[i] % 10);
      seen.insert(seen.end(), idx.begin(), idx.end());
    }
    EXPECT_EQ(seen, loader.epoch_order(e));
    std::vector<int64_t> sorted = seen;
    std::sort(sorted.begin(), sorted.end());
    for (int64_t i = 0; i < 103; ++i) ASSERT_EQ(sorted[i], i);
    EXPECT_FALSE(std::is_sorted(seen.begin(), seen.end()));
    if (e == 0)
      epoch0 = seen;
    else
      EXPECT_NE(seen, epoch0);  // a new permutation each epoch
  }
  EXPECT_FALSE(loader.next().has_value());
}

TEST(DataLoader, IdenticalBatchesForAnyWorkerCount) {
  auto ds = std::make_shared<MemDataset>(77, 3, 8, 8);
  DatasetInfo info = ds->info();
  info.name = "cifar10";  // pad-crop + flip augmentation
  info.mean = {0.4f, 0.5f, 0.6f};
  info.std = {0.2f, 0.3f, 0.25f};
  std::vector<std::vector<Batch>> runs;
  for (auto [workers, prefetch] :
       std::vector<std::pair<int, int>>{{0, 0}, {1, 1}, {3, 2}, {2, 8}}) {
    LoaderOptions o;
    o.batch_size = 8;
    o.shuffle = true;
    o.seed = 42;
    o.workers = workers;
    o.prefetch = prefetch;
    DataLoader loader(ds, make_pipeline(info, Split::Train), o);
    runs.push_back(run_epoch(loader, 3));
    if (workers == 2) {  // resume mid-epoch and the synchronous path agree too
      auto tail = run_epoch(loader, 3, 6);
      ASSERT_EQ(tail.size(), runs.back().size() - 6);
      for (size_t i = 0; i < tail.size(); ++i) {
        EXPECT_EQ(tail[i].index, int64_t(i + 6));
        EXPECT_TRUE(tail[i].images.equal(runs.back()[i + 6].images));
      }
      EXPECT_TRUE(loader.make_batch(3, 4).images.equal(runs.back()[4].images));
      auto other_epoch = run_epoch(loader, 4);
      EXPECT_FALSE(other_epoch[0].images.equal(runs.back()[0].images));
    }
  }
  for (size_t r = 1; r < runs.size(); ++r) {
    ASSERT_EQ(runs[r].size(), runs[0].size());
    for (size_t b = 0; b < runs[0].size(); ++b) {
      EXPECT_TRUE(runs[r][b].images.equal(runs[0][b].images)) << "run " << r << " batch " << b;
      EXPECT_TRUE(runs[r][b].labels.equal(runs[0][b].labels));
    }
  }
  // Augmentation actually happened: not every image equals the plain normalisation.
  Pipeline eval = make_pipeline(info, Split::Test);
  LoaderOptions o;
  o.batch_size = 8;
  o.shuffle = true;
  o.seed = 42;
  DataLoader plain(ds, eval, o);
  plain.start_epoch(3);
  EXPECT_FALSE(plain.next()->images.equal(runs[0][0].images));
}

TEST(DataLoader, DropLastAndLimit) {
  auto ds = std::make_shared<MemDataset>(103, 1, 2, 2);
  LoaderOptions o;
  o.batch_size = 10;
  o.drop_last = true;
  DataLoader dl(ds, identity_pipeline(*ds), o);
  auto batches = run_epoch(dl, 0);
  ASSERT_EQ(batches.size(), 10u);
  for (const auto& b : batches) EXPECT_EQ(b.images.size(0), 10);
  EXPECT_EQ(marker_indices(batches[9]).back(), 99);  // unshuffled order

  o.drop_last = false;
  o.limit = 25;
  o.shuffle = true;
  DataLoader lim(ds, identity_pipeline(*ds), o);
  EXPECT_EQ(lim.num_samples(), 25);
  batches = run_epoch(lim, 0);
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[2].images.size(0), 5);
  std::set<int64_t> seen;
  for (const auto& b : batches)
    for (auto i : marker_indices(b)) seen.insert(i);
  EXPECT_EQ(seen.size(), 25u);
  EXPECT_EQ(*seen.rbegin(), 24);
}

TEST(DataLoader, WaitTimeAccumulatesAndErrorsPropagate) {
  auto slow = std::make_shared<MemDataset>(40, 1, 2, 2, -1, /*sleep_us=*/1500);
  LoaderOptions o;
  o.batch_size = 4;
  o.workers = 1;
  o.prefetch = 1;
  DataLoader dl(slow, identity_pipeline(*slow), o);
  EXPECT_EQ(dl.wait_seconds(), 0.0);
  dl.start_epoch(0);
  double last = 0;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(dl.next().has_value());
    EXPECT_GE(dl.wait_seconds(), last);
    last = dl.wait_seconds();
  }
  while (dl.next()) {
  }
  EXPECT_GT(dl.wait_seconds(), 0.005);  // ~10 batches x 6 ms produced while we waited
  EXPECT_EQ(dl.batches_delivered(), 10);
  dl.reset_wait_seconds();
  EXPECT_EQ(dl.wait_seconds(), 0.0);

  auto failing = std::make_shared<MemDataset>(40, 1, 2, 2, /*fail_at=*/13);
  for (int workers : {0, 2}) {
    o.workers = workers;
    DataLoader bad(failing, identity_pipeline(*failing), o);
    bad.start_epoch(0);
    expect_error(
        [&] {
          while (bad.next()) {
          }
        },
        {"mem://13", "injected"});
  }
}

TEST(DataLoader, RealDataSmoke) {
  if (fs::exists(kCifarDir + "/test_batch.bin")) {
    LoaderOptions o;
    o.batch_size = 64;
    o.limit = 256;
    o.shuffle = true;
    auto loader = make_loader("cifar10", kCifarDir, Split::Test, {}, o);
    loader->start_epoch(0);
    auto b = loader->next();
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(b->images.sizes(), (at::IntArrayRef{64, 3, 32, 32}));
    EXPECT_NEAR(b->images.mean().item<float>(), 0.0f, 0.3f);
    EXPECT_NEAR(b->images.std().item<float>(), 1.0f, 0.3f);
  }
  if (fs::exists(kFashionDir + "/t10k-images-idx3-ubyte.gz")) {
    LoaderOptions o;
    o.batch_size = 100;
    o.limit = 1000;
    auto loader = make_loader("fashion-mnist", "", Split::Test, {}, o);
    loader->start_epoch(0);
    auto b = loader->next();
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(b->images.sizes(), (at::IntArrayRef{100, 1, 28, 28}));
    EXPECT_NEAR(b->images.mean().item<float>(), 0.0f, 0.3f);
  }
}

TEST(DataLoader, HoldoutSplitIsDisjointCompleteAndFixedBySeed) {
  auto ds = std::make_shared<MemDataset>(103, 1, 4, 4);
  auto indices_of = [&](int64_t holdout, uint64_t seed, bool only, uint64_t shuffle_seed) {
    LoaderOptions o;
    o.batch_size = 7;
    o.shuffle = true;
    o.seed = shuffle_seed;
    o.holdout = holdout;
    o.holdout_seed = seed;
    o.holdout_only = only;
    DataLoader loader(ds, identity_pipeline(*ds), o);
    std::vector<int64_t> seen;
    for (const auto& b : run_epoch(loader, 0)) {
      const auto idx = marker_indices(b);
      seen.insert(seen.end(), idx.begin(), idx.end());
    }
    EXPECT_EQ(seen, loader.epoch_order(0));
    std::sort(seen.begin(), seen.end());
    return seen;
  };
  const auto val = indices_of(20, 5, true, 1);
  const auto train = indices_of(20, 5, false, 1);
  ASSERT_EQ(val.size(), 20u);
  ASSERT_EQ(train.size(), 83u);
  std::vector<int64_t> both;
  std::set_union(val.begin(), val.end(), train.begin(), train.end(), std::back_inserter(both));
  ASSERT_EQ(both.size(), 103u) << "disjoint and complete";
  EXPECT_EQ(both.front(), 0);
  EXPECT_EQ(both.back(), 102);
  // The split depends on its seed only, not on the shuffle of the epochs...
  EXPECT_EQ(indices_of(20, 5, true, 99), val);
  // ...and is not just the first or last images.
  EXPECT_NE(val, std::vector<int64_t>(both.begin(), both.begin() + 20));
  EXPECT_NE(val, std::vector<int64_t>(both.end() - 20, both.end()));
  EXPECT_NE(indices_of(20, 6, true, 1), val);
  LoaderOptions bad;
  bad.holdout = 103;
  EXPECT_THROW(DataLoader(ds, identity_pipeline(*ds), bad), DataError);
}

TEST(DataCifar, TrainFilesChooseTheFilesRead) {
  if (!fs::exists(kCifarDir + "/data_batch_1.bin")) PACTQ_SKIP_MISSING("no " << kCifarDir);
  DatasetOptions o;
  o.train_files = {"data_batch_2.bin", "data_batch_3.bin"};
  auto two = open_dataset("cifar10", kCifarDir, Split::Train, o);
  ASSERT_EQ(two->size(), 20000);
  auto all = open_dataset("cifar10", kCifarDir, Split::Train);
  ASSERT_EQ(all->size(), 50000);
  // Record 0 of the subset is record 10000 of the full training set.
  EXPECT_TRUE(at::equal(two->get(0).image, all->get(10000).image));
  EXPECT_EQ(two->label(0), all->label(10000));
  // The test split ignores it; a missing file and a non-CIFAR set are errors.
  EXPECT_EQ(open_dataset("cifar10", kCifarDir, Split::Test, o)->size(), 10000);
  o.train_files = {"data_batch_9.bin"};
  expect_error([&] { open_dataset("cifar10", kCifarDir, Split::Train, o); }, {"data_batch_9.bin"});
  expect_error([&] { open_dataset("fashion-mnist", kFashionDir, Split::Train, o); },
               {"--train-files"});
}
