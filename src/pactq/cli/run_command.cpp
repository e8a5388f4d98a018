// `pactq run`: a .pqm model on a test set with the integer runtime: accuracy
// and throughput. Pixels come from pactq's loaders with mean 0 / std 1, i.e.
// in [0, 1]; the model's input node normalises them itself.

#include <memory>
#include <string>

#include "pactq/cli/commands.h"
#include "pactq/cli/runtime_accuracy.h"
#include "pactq/common/atomic_file.h"
#include "pactq/common/format.h"
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
    const rt::Model m = rt::Model::load(args->model);
    RuntimeTestSet set;
    set.dataset = args->dataset;
    set.data_dir = args->data_dir;
    set.batch_size = args->batch_size;
    set.limit = args->limit;
    set.workers = args->workers;
    set.threads = args->threads;
    set.keep_predictions = !args->predictions.empty();
    const RuntimeAccuracy r = runtime_accuracy(m, args->model, set);
    if (!args->predictions.empty()) {
      std::string text;
      for (int64_t p : r.predictions) text += std::to_string(p) + "\n";
      write_bytes_atomically(args->predictions, text.data(), text.size());
    }
    pactq::print(
        "{} ({}) on {} test: top-1 {:.2f}% ({}/{}); {:.1f} images/s, {:.2f} ms/batch of {} "
        "({} threads, {})\n",
        args->model, m.model_name(), args->dataset, r.top1(), r.correct, r.images,
        r.images / r.seconds, 1000.0 * r.seconds / r.batches, args->batch_size, r.threads, m.isa());
  });
}

}  // namespace pactq::cli
