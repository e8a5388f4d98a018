// Each subcommand of `pactq` registers itself on the app; main() runs the
// chosen one. A subcommand's callback throws on error; main prints the message
// and exits non-zero.
#pragma once
#include <CLI/CLI.hpp>

namespace pactq::cli {

void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_models_command(CLI::App& app);
void add_quickstart_command(CLI::App& app);
void add_export_command(CLI::App& app);
void add_run_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_bench_run(CLI::App& bench);  // `bench run`, registered by add_bench_command
void add_report_command(CLI::App& app);
void add_launch_command(CLI::App& app);

}  // namespace pactq::cli
