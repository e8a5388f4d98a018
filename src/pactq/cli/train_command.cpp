// `pactq train`: the main job.
#include <fmt/format.h>

#include "pactq/cli/commands.h"
#include "pactq/cli/train_options.h"
#include "pactq/train/trainer.h"

namespace pactq::cli {

void add_train_command(CLI::App& app) {
  auto config = std::make_shared<train::TrainConfig>();
  CLI::App* cmd = app.add_subcommand("train", "train a PACT-quantized network");
  add_model_options(*cmd, *config);
  add_optimisation_options(*cmd, *config);
  cmd->callback([config] {
    const train::TrainSummary s = train::run_training(*config);
    if (s.epochs_done > 0) {
      fmt::print(
          "done: {} epochs, {} steps in {:.0f}s; test top-1 {:.2f}% (best {:.2f}%); {:.0f} img/s; "
          "data wait {:.1f}%; files in {}\n",
          s.epochs_done, s.steps, s.seconds, s.final_test_top1, s.best_test_top1,
          s.images_per_second, 100 * s.data_wait_share, s.out_dir);
    } else {
      fmt::print(
          "stopped after {} steps ({:.0f} img/s, data wait {:.1f}%); checkpoint in {}/last.pt\n",
          s.steps, s.images_per_second, 100 * s.data_wait_share, s.out_dir);
    }
  });
}

}  // namespace pactq::cli
