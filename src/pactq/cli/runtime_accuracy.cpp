#include "pactq/cli/runtime_accuracy.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <thread>

#include "pactq/common/format.h"
#include "pactq/data/registry.h"
#include "pactq/data/transforms.h"

namespace pactq::cli {

RuntimeAccuracy runtime_accuracy(const rt::Model& m, const std::string& model_path,
                                 const RuntimeTestSet& set) {
  const int c = m.input_channels(), h = m.input_height(), w = m.input_width();
  data::DatasetOptions dopt;
  dopt.image_size = h;
  dopt.resize_size = std::max<int64_t>(h, (h * 256 + 223) / 224);
  auto dataset = data::open_dataset(set.dataset, set.data_dir, data::Split::Test, dopt);
  data::DatasetInfo info = dataset->info();
  // Image folders are resized to the model's size; the others must match it.
  if (info.channels != c || (info.height > 0 && (info.height != h || info.width != w))) {
    throw std::invalid_argument(
        pactq::format("{}: the model expects {}x{}x{} images (CxHxW), --dataset {} gives {}x{}x{}",
                      model_path, c, h, w, info.name, info.channels, info.height, info.width));
  }
  info.mean.assign(c, 0.f);  // pixels / 255, the runtime normalises
  info.std.assign(c, 1.f);
  data::LoaderOptions lopt;
  lopt.batch_size = set.batch_size;
  lopt.limit = set.limit;
  lopt.workers = set.workers;
  auto loader = std::make_unique<data::DataLoader>(
      dataset, data::make_pipeline(info, data::Split::Test, dopt), lopt);
  const int classes = m.classes();
  RuntimeAccuracy r;
  r.threads = set.threads > 0 ? set.threads
                              : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  rt::ExecutionContext context(r.threads);
  loader->start_epoch(0);
  while (auto batch = loader->next()) {
    const at::Tensor p = batch->images.to(at::kFloat).contiguous();
    if (p.size(1) != c || p.size(2) != h || p.size(3) != w) {
      throw std::invalid_argument(
          pactq::format("{}: {} images are {}x{}x{}, the model takes {}x{}x{}", model_path,
                        set.dataset, p.size(1), p.size(2), p.size(3), c, h, w));
    }
    const int n = static_cast<int>(p.size(0));
    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<float> logits = m.run(p.data_ptr<float>(), n, context);
    r.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const at::Tensor label_t = batch->labels.to(at::kLong).contiguous();
    const int64_t* labels = label_t.data_ptr<int64_t>();
    for (int i = 0; i < n; ++i) {
      const float* row = logits.data() + static_cast<size_t>(i) * classes;
      const int64_t pred = std::max_element(row, row + classes) - row;
      r.correct += pred == labels[i];
      if (set.keep_predictions) r.predictions.push_back(pred);
    }
    r.images += n;
    ++r.batches;
  }
  if (r.images == 0) {
    throw std::runtime_error(model_path + ": the " + set.dataset + " test set is empty");
  }
  return r;
}

}  // namespace pactq::cli
