// `pactq launch --nproc N -- pactq train ...`: a data-parallel run on one
// machine without torchrun (distributed/launcher.h).
#include <cstdlib>
#include <memory>

#include "pactq/cli/commands.h"
#include "pactq/distributed/launcher.h"

namespace pactq::cli {

void add_launch_command(CLI::App& app) {
  auto options = std::make_shared<distributed::LaunchOptions>();
  auto command = std::make_shared<std::vector<std::string>>();
  CLI::App* cmd = app.add_subcommand(
      "launch", "run N processes of a command as one data-parallel group on this machine");
  cmd->add_option("--nproc", options->nproc, "processes (ranks)")->capture_default_str();
  cmd->add_option("--master-addr", options->master_addr, "rendezvous address")
      ->capture_default_str();
  cmd->add_option("--master-port", options->master_port, "rendezvous port (0: a free one)")
      ->capture_default_str();
  cmd->add_option("--grace", options->grace_seconds,
                  "seconds the other ranks get to report a failed rank before they are stopped")
      ->capture_default_str();
  cmd->add_option("command", *command, "the command each rank runs (after --)")->required();
  cmd->callback([options, command] {
    const int status = distributed::launch(*options, *command);
    if (status != 0) std::exit(status);
  });
}

}  // namespace pactq::cli
