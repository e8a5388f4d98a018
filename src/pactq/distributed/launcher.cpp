#include "pactq/distributed/launcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "pactq/common/format.h"

namespace pactq::distributed {

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error(pactq::format("socket: {}", std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    throw std::runtime_error("cannot find a free port: " + why);
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

namespace {

int status_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

std::string describe(int status) {
  if (WIFSIGNALED(status)) return pactq::format("was killed by signal {}", WTERMSIG(status));
  return pactq::format("exited with status {}", status_code(status));
}

}  // namespace

int launch(const LaunchOptions& o, const std::vector<std::string>& command) {
  if (o.nproc < 1) throw std::invalid_argument("--nproc: expected at least 1");
  if (command.empty()) {
    throw std::invalid_argument(
        "launch: no command given (pactq launch --nproc N -- pactq train ...)");
  }
  const int port = o.master_port > 0 ? o.master_port : free_port();
  std::vector<pid_t> pids;
  for (int rank = 0; rank < o.nproc; ++rank) {
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error(pactq::format("fork: {}", std::strerror(errno)));
    if (pid == 0) {
      ::setenv("RANK", std::to_string(rank).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(o.nproc).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(o.nproc).c_str(), 1);
      ::setenv("MASTER_ADDR", o.master_addr.c_str(), 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      std::vector<char*> argv;
      for (const std::string& a : command) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execvp(argv[0], argv.data());
      std::fprintf(stderr, "pactq launch: cannot run %s: %s\n", argv[0], std::strerror(errno));
      std::_Exit(127);
    }
    pids.push_back(pid);
  }
  std::fprintf(stderr, "pactq launch: %d ranks, rendezvous at %s:%d\n", o.nproc,
               o.master_addr.c_str(), port);

  int result = 0;
  int running = o.nproc;
  std::vector<bool> done(static_cast<size_t>(o.nproc), false);
  std::chrono::steady_clock::time_point deadline{};
  int signals_sent = 0;  // after the grace: 1 = SIGTERM sent, 2 = SIGKILL sent 5 s later
  while (running > 0) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      for (int r = 0; r < o.nproc; ++r) {
        if (pids[static_cast<size_t>(r)] != pid) continue;
        done[static_cast<size_t>(r)] = true;
        --running;
        if (status_code(status) != 0 && result == 0) {
          result = status_code(status);
          std::fprintf(stderr, "pactq launch: rank %d %s; waiting up to %.0f s for the others\n", r,
                       describe(status).c_str(), o.grace_seconds);
          deadline = std::chrono::steady_clock::now() +
                     std::chrono::milliseconds(static_cast<int64_t>(o.grace_seconds * 1000));
        }
      }
      continue;
    }
    if (pid < 0 && errno != EINTR) break;
    const auto now = std::chrono::steady_clock::now();
    const int due = result == 0 || now <= deadline              ? 0
                    : now <= deadline + std::chrono::seconds(5) ? 1
                                                                : 2;
    if (due > signals_sent) {
      for (int r = 0; r < o.nproc; ++r) {
        if (done[static_cast<size_t>(r)]) continue;
        std::fprintf(stderr, "pactq launch: %s rank %d\n", due == 1 ? "stopping" : "killing", r);
        ::kill(pids[static_cast<size_t>(r)], due == 1 ? SIGTERM : SIGKILL);
      }
      signals_sent = due;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return result;
}

}  // namespace pactq::distributed
