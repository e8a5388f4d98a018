// `pactq launch`: runs N copies of a command on this machine as the ranks of
// one data-parallel run, with the environment torchrun would give them
// (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT),
// for machines without torchrun. When a rank fails, the others get `grace`
// seconds to fail on their own (they name the rank at fault), then are
// stopped.
#pragma once
#include <string>
#include <vector>

namespace pactq::distributed {

struct LaunchOptions {
  int nproc = 2;
  std::string master_addr = "127.0.0.1";
  int master_port = 0;  // 0: a free port
  double grace_seconds = 30;
};

// A TCP port free on this machine now (bound to port 0 and released).
int free_port();

// Runs the ranks to completion; returns the exit status to report: 0 when
// every rank succeeded, else the first failing rank's (128 + signal if it was
// killed). Throws std::invalid_argument / std::runtime_error on bad options or
// when a process cannot be started.
int launch(const LaunchOptions& options, const std::vector<std::string>& command);

}  // namespace pactq::distributed
