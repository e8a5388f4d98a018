#include "pactq/distributed/options.h"

#include <cstdlib>
#include <stdexcept>

#include "pactq/common/format.h"

namespace pactq::distributed {
namespace {

int env_int(const EnvReader& env, const char* name, int fallback) {
  const char* text = env(name);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (*end != '\0' || value < 0 || value > 1 << 30) {
    throw std::invalid_argument(pactq::format(
        "{}={}: expected a non-negative integer (as torchrun or pactq launch set it)", name, text));
  }
  return static_cast<int>(value);
}

}  // namespace

DistOptions resolve(DistOptions o, const EnvReader& env) {
  if (o.world_size == 0) o.world_size = env_int(env, "WORLD_SIZE", 1);
  if (o.world_size < 1) throw std::invalid_argument("--world-size: expected at least 1");
  if (o.rank < 0) o.rank = env_int(env, "RANK", 0);
  if (o.rank >= o.world_size) {
    throw std::invalid_argument(pactq::format("--rank {}: expected 0 to {} for --world-size {}",
                                              o.rank, o.world_size - 1, o.world_size));
  }
  if (o.local_rank < 0) o.local_rank = env_int(env, "LOCAL_RANK", o.rank);
  if (o.local_world_size <= 0) o.local_world_size = env_int(env, "LOCAL_WORLD_SIZE", 0);
  if (o.master_addr.empty()) {
    const char* addr = env("MASTER_ADDR");
    o.master_addr = addr != nullptr && *addr != '\0' ? addr : "127.0.0.1";
  }
  if (o.master_port == 0) o.master_port = env_int(env, "MASTER_PORT", 29500);
  if (o.master_port < 1 || o.master_port > 65535) {
    throw std::invalid_argument(
        pactq::format("--master-port {}: expected 1 to 65535", o.master_port));
  }
  if (!(o.timeout_seconds > 0)) {
    throw std::invalid_argument("--dist-timeout: expected a positive number of seconds");
  }
  const char* agent = env("TORCHELASTIC_USE_AGENT_STORE");
  if (agent != nullptr && std::string(agent) == "True") {
    o.agent_store = true;
    o.store_prefix =
        pactq::format("/worker/attempt_{}", env_int(env, "TORCHELASTIC_RESTART_COUNT", 0));
  }
  return o;
}

DistOptions resolve(DistOptions given) {
  return resolve(std::move(given), [](const char* name) { return std::getenv(name); });
}

}  // namespace pactq::distributed
