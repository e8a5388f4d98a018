// `pactq eval`: accuracy of a checkpoint, or of float weights (--init-from).

#include <filesystem>
#include <stdexcept>

#include "pactq/cli/commands.h"
#include "pactq/cli/train_options.h"
#include "pactq/common/format.h"
#include "pactq/export/deployed_eval.h"
#include "pactq/nn/clipping_report.h"
#include "pactq/train/checkpoint.h"
#include "pactq/train/compute_threads.h"
#include "pactq/train/data_setup.h"
#include "pactq/train/device.h"
#include "pactq/train/evaluate.h"
#include "pactq/train/model_setup.h"

namespace pactq::cli {

namespace {

// --clipping-report: the model runs as evaluated (quantized), observed.
void print_clipping_report(models::QuantModel& model, data::DataLoader& loader, int batches) {
  at::NoGradGuard no_grad;
  model.eval();
  nn::ClippingRecorder recorder;
  const at::Device device = model.parameters().front().device();
  loader.start_epoch(0);
  int seen = 0;
  while (seen < batches) {
    auto batch = loader.next();
    if (!batch) break;
    model.forward(batch->images.to(device));
    ++seen;
  }
  const std::vector<nn::LayerClipping> layers = recorder.report(model);
  pactq::print(
      "clipping per activation ({} test batches; errors are mean squared errors against the ReLU "
      "output, in % of its mean square):\n",
      seen);
  pactq::print("  {:<18} {:>4} {:>7} {:>8} {:>7} {:>9} {:>9} {:>8} {:>10} {:>10}\n", "layer",
               "bits", "alpha", "clipped", "zero", "clip err", "round err", "total", "best alpha",
               "best total");
  for (const nn::LayerClipping& l : layers) {
    const double p = l.relu_power > 0 ? 100.0 / l.relu_power : 0.0;
    pactq::print(
        "  {:<18} {:>4} {:>7.3f} {:>7.2f}% {:>6.1f}% {:>8.3f}% {:>8.3f}% {:>7.3f}% {:>10.3f} "
        "{:>9.3f}%\n",
        l.name, l.bits, l.alpha, 100.0 * l.share_clipped, 100.0 * l.share_zero, p * l.clip_mse,
        p * l.round_mse, p * l.total_mse(), l.best_alpha, p * l.best_mse);
  }
}

}  // namespace

void add_eval_command(CLI::App& app) {
  struct Args {
    std::string checkpoint;
    bool no_deployed = false;
    int clipping_batches = 0;
    train::TrainConfig config;
  };
  auto args = std::make_shared<Args>();
  // Evaluating float weights is the common case without a checkpoint.
  args->config.wbits = "fp";
  args->config.abits = "fp";
  args->config.act_quant = "relu";
  args->config.batch_size = 256;
  CLI::App* cmd =
      app.add_subcommand("eval", "evaluate a checkpoint (or float weights with --init-from)");
  cmd->add_option("checkpoint", args->checkpoint, "a .pt checkpoint written by pactq train");
  add_model_options(*cmd, args->config);
  cmd->add_option("--clipping-report", args->clipping_batches,
                  "per activation, on N test batches: the share of inputs clipped, the clip's "
                  "and the rounding's error against ReLU, and the alpha that would minimise it")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--no-deployed", args->no_deployed,
                "skip the deployed model's accuracy (reported by default for a checkpoint)");
  cmd->callback([args, cmd] {
    // A recipe (--config, read by the top app for `train`) defines the network
    // to evaluate: its model, data and precision keys apply here too, below
    // the command line; its optimisation keys mean nothing to eval.
    const CLI::Option* recipe = cmd->get_parent()->get_option_no_throw("--config");
    if (recipe != nullptr && recipe->count() > 0) {
      const std::string path = recipe->as<std::string>();
      if (!args->checkpoint.empty()) {
        throw std::invalid_argument("--config " + path + ": the checkpoint " + args->checkpoint +
                                    " defines the network; evaluate it without a recipe");
      }
      for (const CLI::ConfigItem& item :
           cmd->get_parent()->get_config_formatter()->from_file(path)) {
        if (item.parents.size() != 1 || item.parents[0] != "train") continue;
        CLI::Option* opt = cmd->get_option_no_throw("--" + item.name);
        if (opt == nullptr || opt->count() > 0) continue;  // training-only, or given on the line
        opt->add_result(item.inputs);
        opt->run_callback();
      }
    }
    train::TrainConfig config = args->config;
    const at::Device device = train::resolve_device(config.device);  // fails before any work
    models::QuantModelPtr model;
    if (!args->checkpoint.empty()) {
      // The checkpoint defines the network; these flags would be ignored.
      for (const char* flag :
           {"--model", "--num-classes", "--wbits", "--abits", "--first-last", "--weight-quant",
            "--act-quant", "--override", "--alpha-init", "--init-from", "--mean", "--std"}) {
        if (cmd->count(flag) > 0) {
          throw std::invalid_argument(pactq::format(
              "{}: the checkpoint {} defines the network, so {} cannot change it (drop {}, or "
              "evaluate float weights with --model and --init-from and no checkpoint)",
              flag, args->checkpoint, flag, flag));
        }
      }
      const train::LoadedCheckpoint header = train::read_checkpoint_header(args->checkpoint);
      train::TrainConfig stored = header.config;
      // Data location and execution may change; the network may not.
      if (cmd->count("--dataset")) stored.dataset = config.dataset;
      if (cmd->count("--data-dir")) stored.data_dir = config.data_dir;
      stored.limit_test = config.limit_test;
      stored.workers = config.workers;
      stored.threads = config.threads;
      stored.device = config.device;
      stored.batch_size = config.batch_size;
      stored.init_from.clear();
      config = stored;
      model = train::build_model(config, config.num_classes);
      train::load_checkpoint(args->checkpoint, *model, nullptr);
    } else {
      if (config.init_from.empty()) {
        throw std::invalid_argument(
            "eval: give a CHECKPOINT, or --model and --init-from FILE.safetensors");
      }
      config.validate();
    }
    train::set_compute_threads(config.threads);
    auto loader = train::make_test_loader(config);
    if (!model) {
      const int64_t classes =
          config.num_classes > 0 ? config.num_classes : loader->dataset().info().num_classes;
      model = train::build_model(config, classes);
      const train::InitReport report = train::load_float_weights(*model, config.init_from);
      if (!config.quiet)
        pactq::print(stderr, "init from {}: {}\n", config.init_from, report.summary());
    }
    if (!device.is_cpu()) model->to(device);  // built and loaded on the CPU
    const train::EvalResult r = train::evaluate(
        *model, [&](const at::Tensor& x) { return model->forward(x); }, *loader);
    pactq::print(
        "{} on {} test ({} images, {}): top-1 {:.2f}% ({}/{})  top-5 {:.2f}%  loss {:.4f}  "
        "[{:.1f}s]{}\n",
        config.model, config.dataset, r.count, config.precision_policy().summary(), r.top1,
        r.correct, r.count, r.top5, r.loss, r.seconds,
        args->checkpoint.empty() ? "" : "  (fake-quantized model)");
    if (args->clipping_batches > 0) print_clipping_report(*model, *loader, args->clipping_batches);
    if (!args->checkpoint.empty() && !args->no_deployed) {
      // The number a user gets: the exported model, not the training graph.
      auto pixels = train::make_pixel_loader(config, false);
      if (!device.is_cpu()) model->to(at::kCPU);  // the exporter reads host memory
      const train::EvalResult d =
          export_::evaluate_deployed(*model, config.mean, config.std, *pixels);
      pactq::print(
          "deployed (exported integer model, .pqm semantics): top-1 {:.2f}% ({}/{})  top-5 "
          "{:.2f}%  loss {:.4f}  [{:.1f}s]\n",
          d.top1, d.correct, d.count, d.top5, d.loss, d.seconds);
    }
  });
}

}  // namespace pactq::cli
