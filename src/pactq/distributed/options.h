// Where this process sits in a data-parallel run: world size, rank, the
// rendezvous address (rank 0 hosts a c10d TCPStore there, or torchrun's agent
// does) and the failure timeout. Given by flags (`pactq train --world-size ...`)
// or, for any field a flag leaves unset, by the environment torchrun and
// `pactq launch` set (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
// MASTER_ADDR, MASTER_PORT, TORCHELASTIC_USE_AGENT_STORE,
// TORCHELASTIC_RESTART_COUNT).
#pragma once
#include <functional>
#include <string>

namespace pactq::distributed {

struct DistOptions {
  // As given on the command line; "unset" values (0, -1, "") are filled from
  // the environment by resolve(), then defaulted.
  int world_size = 0;        // 1: not distributed
  int rank = -1;             // 0 .. world_size - 1
  int local_rank = -1;       // rank on this machine (picks the GPU)
  int local_world_size = 0;  // processes on this machine (shares the cores)
  std::string master_addr;   // rank 0's (or torchrun's agent's) store address
  int master_port = 0;
  double timeout_seconds = 300;  // --dist-timeout: a rank gone this long fails the others
  // Under torchrun's agent store every rank connects as a client, keys under
  // "/worker/attempt_<restart count>" (as torch.distributed does).
  bool agent_store = false;
  std::string store_prefix;

  bool enabled() const { return world_size > 1; }
};

using EnvReader = std::function<const char*(const char*)>;

// Fills unset fields from the environment, then defaults (world size 1, rank
// 0, 127.0.0.1:29500). Throws std::invalid_argument, one line naming the flag
// or variable, for a malformed or inconsistent value.
DistOptions resolve(DistOptions given, const EnvReader& env);
DistOptions resolve(DistOptions given);  // from the process environment

}  // namespace pactq::distributed
