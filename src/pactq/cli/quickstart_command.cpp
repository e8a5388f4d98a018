// `pactq quickstart`: the README's first command. Trains lenet5 on
// Fashion-MNIST (from the Debian package) at full precision and with PACT
// W4/A4, exports the W4/A4 model and runs it with the integer runtime, then
// prints the accuracies side by side: the deployed one is what a user gets.
#include <vector>

#include "pactq/cli/commands.h"
#include "pactq/cli/runtime_accuracy.h"
#include "pactq/common/format.h"
#include "pactq/export/checkpoint_export.h"
#include "pactq/export/deployed_eval.h"
#include "pactq/runtime/model.h"
#include "pactq/train/trainer.h"

namespace pactq::cli {

void add_quickstart_command(CLI::App& app) {
  struct Args {
    int epochs = 3;
    std::string out = "runs/quickstart";
    std::string data_dir;
    int threads = 0;
    int64_t limit_train = 0;
    bool quiet = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "quickstart", "train lenet5 on Fashion-MNIST at fp and at PACT W4/A4, and compare");
  cmd->add_option("--epochs", args->epochs, "epochs per run")->capture_default_str();
  cmd->add_option("--out", args->out, "output directory")->capture_default_str();
  cmd->add_option("--data-dir", args->data_dir,
                  "Fashion-MNIST directory (default: the Debian package's)");
  cmd->add_option("--threads", args->threads, "compute threads (0: all cores)");
  cmd->add_option("--limit-train", args->limit_train, "train on the first N images only");
  cmd->add_flag("--quiet,-q", args->quiet, "no progress bars");
  cmd->callback([args] {
    struct Run {
      std::string label, bits, act, dir;
      train::TrainSummary result;
    };
    std::vector<Run> runs = {{"float (fp32 weights, ReLU)", "fp", "relu", args->out + "/fp32", {}},
                             {"PACT W4/A4 (fp first/last)", "4", "pact", args->out + "/w4a4", {}}};
    for (Run& run : runs) {
      train::TrainConfig c;
      c.model = "lenet5";
      c.dataset = "fashion-mnist";
      c.data_dir = args->data_dir;
      c.wbits = c.abits = run.bits;
      c.act_quant = run.act;
      c.alpha_init = 6.0;  // BN-normalised inputs: 6 keeps the 4-bit step useful from the start
      c.epochs = args->epochs;
      c.batch_size = 128;
      c.optimizer = "sgd";
      c.lr = 0.05;
      c.weight_decay = 5e-4;
      c.schedule = "cosine";
      c.out = run.dir;
      c.threads = args->threads;
      c.limit_train = args->limit_train;
      c.quiet = args->quiet;
      c.eval_deployed = run.bits != "fp";  // the exported model's accuracy every epoch
      pactq::print("== {} ==\n", run.label);
      std::fflush(stdout);
      run.result = train::run_training(c, export_::evaluate_deployed);
    }
    // The W4/A4 model as deployed: exported to a .pqm and run by the integer runtime.
    const std::string pqm = runs[1].dir + "/model.pqm";
    const export_::ExportReport exported =
        export_::export_checkpoint(runs[1].dir + "/last.pt", pqm);
    RuntimeTestSet set;
    set.dataset = "fashion-mnist";
    set.data_dir = args->data_dir;
    set.threads = args->threads;
    const rt::Model deployed_model = rt::Model::load(pqm);
    const RuntimeAccuracy deployed = runtime_accuracy(deployed_model, pqm, set);

    pactq::print("\nlenet5 on Fashion-MNIST, {} epochs each (test top-1 of the last epoch):\n",
                 args->epochs);
    pactq::print("  {:<30} {:>11} {:>14} {:>10} {:>9}\n", "precision", "training", "deployed",
                 "img/s", "time");
    pactq::print("  {:<30} {:>10.2f}% {:>14} {:>10.0f} {:>8.0f}s\n", runs[0].label,
                 runs[0].result.final_test_top1, "(float)", runs[0].result.images_per_second,
                 runs[0].result.seconds);
    pactq::print("  {:<30} {:>10.2f}% {:>13.2f}% {:>10.0f} {:>8.0f}s\n", runs[1].label,
                 runs[1].result.final_test_top1, deployed.top1(), runs[1].result.images_per_second,
                 runs[1].result.seconds);
    pactq::print("  W4/A4 deployed vs float: {:+.2f} points\n",
                 deployed.top1() - runs[0].result.final_test_top1);
    pactq::print(
        "  training = the fake-quantized LibTorch model; deployed = {} ({} bytes, integer "
        "runtime, {})\n",
        pqm, exported.file_bytes, deployed_model.isa());
    pactq::print(
        "\nfiles: {0}/fp32 and {0}/w4a4 (metrics.csv, metrics.jsonl, config.json, last.pt, "
        "best.pt, model.pqm)\n"
        "next: pactq run {0}/w4a4/model.pqm --dataset fashion-mnist; pactq report {0}/fp32 "
        "{0}/w4a4\n",
        args->out);
  });
}

}  // namespace pactq::cli
