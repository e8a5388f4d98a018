// The `pactq` command: train, evaluate, export and run PACT-quantized networks.
#include <c10/util/Exception.h>
#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>
#include <exception>
#include <string>

#include "pactq/cli/commands.h"
#include "pactq/cli/recipe_check.h"
#include "pactq/common/interrupt.h"
#include "pactq/common/memory_tuning.h"

namespace {
// One line per error: LibTorch appends a C++ backtrace to its messages.
int print_error(const std::string& message, int status = 1) {
  std::fprintf(stderr, "pactq: error: %s\n", message.substr(0, message.find('\n')).c_str());
  return status;
}
}  // namespace

int main(int argc, char** argv) {
  pactq::keep_freed_memory_mapped();
  // Past a file-size limit (ulimit -f), write() should fail with EFBIG and be
  // reported, not kill the process in the middle of a checkpoint.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"pactq: PACT quantization-aware training (LibTorch) and integer deployment"};
  app.require_subcommand(1);
  // Recipes: a TOML file whose [train] section holds the train options by
  // their long names (configs/). CLI11 2.1 reads config files only on the top
  // app, so --config lives here and falls through from `pactq train`.
  app.set_config("--config", "", "TOML recipe; the options of `train` under a [train] section");
  app.allow_config_extras(false);  // a misspelt key in a recipe is an error, not a silent default
  app.fallthrough();
  pactq::cli::add_quickstart_command(app);
  pactq::cli::add_train_command(app);
  pactq::cli::add_eval_command(app);
  pactq::cli::add_models_command(app);
  pactq::cli::add_export_command(app);
  pactq::cli::add_run_command(app);
  pactq::cli::add_inspect_command(app);
  pactq::cli::add_bench_command(app);
  pactq::cli::add_report_command(app);
  pactq::cli::add_launch_command(app);
  try {
    const std::string recipe = pactq::cli::recipe_path(argc, argv);
    if (!recipe.empty()) pactq::cli::check_recipe(recipe, app, *app.get_subcommand("train"));
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    return print_error(std::string(e.what()) + " (see --help)", e.get_exit_code());
  } catch (const pactq::Interrupted& e) {
    std::fprintf(stderr, "pactq: interrupted: %s\n", e.what());
    return 130;  // 128 + SIGINT, as a shell reports a Ctrl-C
  } catch (const c10::Error& e) {
    return print_error(e.what_without_backtrace());
  } catch (const std::exception& e) {
    return print_error(e.what());
  }
  return 0;
}
