// Ctrl-C during a long run: the first SIGINT only raises a flag, so the
// trainer can finish its step, write last.pt and stop with `Interrupted`
// (main exits 130); a second SIGINT kills as usual. Torch-free, header-only.
#pragma once
#include <signal.h>

#include <csignal>
#include <stdexcept>

namespace pactq {

// Thrown by a job that stopped on request; main prints "pactq: interrupted: ...".
class Interrupted : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline volatile std::sig_atomic_t interrupt_requested = 0;

// Catches SIGINT while alive and restores the previous handler on exit.
class InterruptGuard {
 public:
  InterruptGuard() {
    interrupt_requested = 0;
    struct sigaction sa {};
    sa.sa_handler = [](int) { interrupt_requested = 1; };
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART | SA_RESETHAND;  // the second Ctrl-C is the default: exit
    installed_ = ::sigaction(SIGINT, nullptr, &previous_) == 0 &&
                 previous_.sa_handler != SIG_IGN &&  // nohup & co. keep ignoring it
                 ::sigaction(SIGINT, &sa, nullptr) == 0;
  }
  ~InterruptGuard() {
    if (installed_) ::sigaction(SIGINT, &previous_, nullptr);
  }
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

  bool requested() const { return interrupt_requested != 0; }

 private:
  struct sigaction previous_ {};
  bool installed_ = false;
};

}  // namespace pactq
