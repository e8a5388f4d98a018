// The `pactq` command: train, evaluate, export and run PACT-quantized networks.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

#include "pactq/cli/commands.h"
#include "pactq/common/memory_tuning.h"

int main(int argc, char** argv) {
  pactq::keep_freed_memory_mapped();
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
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pactq: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
