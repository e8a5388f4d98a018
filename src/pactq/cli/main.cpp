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
