// `pactq train`: the main job.

#include <algorithm>
#include <filesystem>
#include <set>
#include <stdexcept>
#include <string>

#include "pactq/cli/commands.h"
#include "pactq/cli/train_options.h"
#include "pactq/common/format.h"
#include "pactq/export/deployed_eval.h"
#include "pactq/train/checkpoint.h"
#include "pactq/train/trainer.h"

namespace pactq::cli {
namespace {

// --resume continues the stored recipe; a flag that would change it (and
// would be ignored) is an error, not a surprise hours later.
void check_resume_flags(const CLI::App& cmd, const train::TrainConfig& now) {
  const std::string last = now.out + "/last.pt";
  if (!now.resume || !std::filesystem::is_regular_file(last)) return;
  const nlohmann::json stored = train::read_checkpoint_header(last).config.to_json();
  const nlohmann::json given = now.to_json();
  // What merge_for_resume (trainer.cpp) takes from the command line.
  static const std::set<std::string> may_change = {
      "out",      "quiet", "threads", "device", "workers", "max_steps", "checkpoint_every",
      "data_dir", "resume"};
  auto text = [](const nlohmann::json& v) {
    return v.is_string() ? v.get<std::string>() : v.dump();
  };
  for (auto it = given.begin(); it != given.end(); ++it) {
    if (may_change.count(it.key()) || !stored.contains(it.key())) continue;
    std::string flag = "--" + (it.key() == "overrides" ? std::string("override") : it.key());
    std::replace(flag.begin(), flag.end(), '_', '-');
    const CLI::Option* opt = cmd.get_option_no_throw(flag);
    if (opt == nullptr || opt->count() == 0 || stored[it.key()] == it.value()) continue;
    throw std::invalid_argument(pactq::format(
        "{} {} conflicts with --resume: {} was trained with {} {} (drop {}, or use another --out)",
        flag, text(it.value()), last, flag, text(stored[it.key()]), flag));
  }
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto config = std::make_shared<train::TrainConfig>();
  CLI::App* cmd = app.add_subcommand("train", "train a PACT-quantized network");
  add_model_options(*cmd, *config);
  add_optimisation_options(*cmd, *config);
  add_distributed_options(*cmd, *config);
  cmd->callback([config, cmd] {
    if (std::filesystem::exists(config->out) && !std::filesystem::is_directory(config->out))
      throw std::invalid_argument("--out: " + config->out + " is a file, expected a directory");
    check_resume_flags(*cmd, *config);
    const train::TrainSummary s = train::run_training(*config, export_::evaluate_deployed);
    const std::string ranks =
        s.world_size > 1
            ? pactq::format(" over {} processes (gradient all-reduce wait {:.1f} ms/step)",
                            s.world_size, 1000 * s.comm_wait_seconds_per_step)
            : "";
    if (s.rank != 0) return;  // rank 0 speaks for the group
    if (s.epochs_done > 0) {
      std::string last = pactq::format("test top-1 {:.2f}%", s.final_test_top1);
      if (s.final_test_top1_deployed >= 0)
        last += pactq::format(", deployed {:.2f}%", s.final_test_top1_deployed);
      if (s.final_val_top1 >= 0) last += pactq::format(", val {:.2f}%", s.final_val_top1);
      const std::string best_by = std::string(config->val_split > 0 ? "val" : "test") +
                                  (config->eval_deployed ? " deployed" : "");
      pactq::print(
          "done: {} epochs, {} steps in {:.0f}s; last epoch {} (best.pt: {} {:.2f}%); {:.0f} "
          "img/s{}; data wait {:.1f}%; files in {}\n",
          s.epochs_done, s.steps, s.seconds, last, best_by, s.best_top1, s.images_per_second, ranks,
          100 * s.data_wait_share, s.out_dir);
    } else {
      pactq::print(
          "stopped after {} steps ({:.0f} img/s{}, data wait {:.1f}%); checkpoint in {}/last.pt\n",
          s.steps, s.images_per_second, ranks, 100 * s.data_wait_share, s.out_dir);
    }
  });
}

}  // namespace pactq::cli
