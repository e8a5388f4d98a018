// `pactq run`: a .pqm model on a test set with the integer runtime: accuracy
// and throughput. Pixels come from pactq's loaders with mean 0 / std 1, i.e.
// in [0, 1]; the model's input node normalises them itself.
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "pactq/cli/commands.h"
#include "pactq/common/atomic_file.h"
#include "pactq/common/format.h"
#include "pactq/data/registry.h"
#include "pactq/data/transforms.h"
#include "pactq/runtime/model.h"

namespace pactq::cli {

void add_run_command(CLI::App& app) {
  struct Args {
    std::string model;
    std::string dataset = "cifar10";
    std::string data_dir;
    int64_t batch_size = 64;
    int threads = 0;
    int64_t limit = 0;
    int workers = 2;
    std::string predictions;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd =
      app.add_subcommand("run", "run a .pqm model on a test set with the integer runtime");
  cmd->add_option("model", args->model, "a .pqm file written by pactq export")->required();
  cmd->add_option("--dataset", args->dataset, "data set name (cifar10, fashion-mnist, ...)");
  cmd->add_option("--data-dir", args->data_dir, "data set directory");
  cmd->add_option("--batch-size", args->batch_size, "images per runtime call")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--threads", args->threads, "runtime worker threads (0: all cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--limit", args->limit, "first N test images only (0: all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--workers", args->workers, "data loading threads")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--predictions", args->predictions,
                  "write the predicted class of every image, one per line in test-set order "
                  "(what a shipped model's manifest hashes)");
  cmd->callback([args] {
    rt::Model m = rt::Model::load(args->model);
    if (args->threads == 0) args->threads = std::max(1u, std::thread::hardware_concurrency());
    m.set_threads(args->threads);
    const int c = m.input_channels(), h = m.input_height(), w = m.input_width();
    data::DatasetOptions dopt;
    dopt.image_size = h;
    dopt.resize_size = std::max<int64_t>(h, (h * 256 + 223) / 224);
    auto dataset = data::open_dataset(args->dataset, args->data_dir, data::Split::Test, dopt);
    data::DatasetInfo info = dataset->info();
    // Image folders are resized to the model's size; the others must match it.
    if (info.channels != c || (info.height > 0 && (info.height != h || info.width != w))) {
      throw std::invalid_argument(pactq::format(
          "{}: the model expects {}x{}x{} images (CxHxW), --dataset {} gives {}x{}x{}", args->model,
          c, h, w, info.name, info.channels, info.height, info.width));
    }
    info.mean.assign(c, 0.f);  // pixels / 255, the runtime normalises
    info.std.assign(c, 1.f);
    data::LoaderOptions lopt;
    lopt.batch_size = args->batch_size;
    lopt.limit = args->limit;
    lopt.workers = args->workers;
    auto loader = std::make_unique<data::DataLoader>(
        dataset, data::make_pipeline(info, data::Split::Test, dopt), lopt);
    const int classes = m.classes();
    int64_t images = 0, correct = 0, batches = 0;
    std::string predicted;  // --predictions: one class a line
    double seconds = 0;
    loader->start_epoch(0);
    while (auto batch = loader->next()) {
      const at::Tensor p = batch->images.to(at::kFloat).contiguous();
      if (p.size(1) != c || p.size(2) != h || p.size(3) != w) {
        throw std::invalid_argument(
            pactq::format("run: {} images are {}x{}x{}, the model {} takes {}x{}x{}", args->dataset,
                          p.size(1), p.size(2), p.size(3), args->model, c, h, w));
      }
      const int n = static_cast<int>(p.size(0));
      const auto t0 = std::chrono::steady_clock::now();
      const std::vector<float> logits = m.run(p.data_ptr<float>(), n);
      seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const at::Tensor label_t = batch->labels.to(at::kLong).contiguous();
      const int64_t* labels = label_t.data_ptr<int64_t>();
      for (int i = 0; i < n; ++i) {
        const float* row = logits.data() + static_cast<size_t>(i) * classes;
        const int64_t pred = std::max_element(row, row + classes) - row;
        correct += pred == labels[i];
        if (!args->predictions.empty()) predicted += std::to_string(pred) + "\n";
      }
      images += n;
      ++batches;
    }
    if (images == 0) throw std::runtime_error("run: the test set is empty");
    if (!args->predictions.empty()) {
      write_bytes_atomically(args->predictions, predicted.data(), predicted.size());
    }
    pactq::print(
        "{} ({}) on {} test: top-1 {:.2f}% ({}/{}); {:.1f} images/s, {:.2f} ms/batch of {} "
        "({} threads, {})\n",
        args->model, m.model_name(), args->dataset, 100.0 * correct / images, correct, images,
        images / seconds, 1000.0 * seconds / batches, args->batch_size, args->threads, m.isa());
  });
}

}  // namespace pactq::cli
