#include "pactq/cli/coprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <thread>

namespace pactq::cli {

Coprocess::Coprocess(const std::vector<std::string>& argv, std::string what)
    : what_(std::move(what)) {
  if (argv.empty()) throw std::invalid_argument(what_ + ": no command");
  char tmpl[] = "/tmp/pactq-coprocess-XXXXXX";
  const int err_fd = ::mkstemp(tmpl);
  if (err_fd < 0) throw std::runtime_error(what_ + ": mkstemp: " + std::strerror(errno));
  stderr_path_ = tmpl;
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) {
    ::close(err_fd);
    throw std::runtime_error(what_ + ": pipe: " + std::strerror(errno));
  }
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error(what_ + ": fork: " + std::strerror(errno));
  if (pid_ == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err_fd, 2);
    ::execvp(args[0], args.data());
    const std::string msg = "cannot run " + argv[0] + ": " + std::strerror(errno) + "\n";
    if (::write(2, msg.data(), msg.size()) < 0) {
    }
    ::_exit(127);
  }
  ::close(err_fd);
  ::close(in[0]);
  ::close(out[1]);
  to_child_ = in[1];
  from_child_ = out[0];
  ::signal(SIGPIPE, SIG_IGN);  // a dead child must give an error, not kill us
}

Coprocess::~Coprocess() {
  if (to_child_ >= 0) ::close(to_child_);
  if (from_child_ >= 0) ::close(from_child_);
  if (pid_ > 0) {
    int status = 0;
    for (int i = 0; i < 50 && ::waitpid(pid_, &status, WNOHANG) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (i == 49) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
      }
    }
  }
  if (!stderr_path_.empty()) ::unlink(stderr_path_.c_str());
}

void Coprocess::fail(const std::string& why) {
  std::string status = "still running";
  if (pid_ > 0) {
    int st = 0;
    if (::waitpid(pid_, &st, 0) == pid_) {
      status = WIFEXITED(st) ? "exit status " + std::to_string(WEXITSTATUS(st))
                             : "killed by signal " + std::to_string(WTERMSIG(st));
      pid_ = -1;
    }
  }
  std::ifstream f(stderr_path_);
  std::string err((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (err.size() > 400) err = "..." + err.substr(err.size() - 400);
  throw std::runtime_error(what_ + ": " + why + " (" + status + ")" +
                           (err.empty() ? "" : "; its stderr: " + err));
}

void Coprocess::write_line(const std::string& line) {
  const std::string s = line + "\n";
  size_t done = 0;
  while (done < s.size()) {
    const ssize_t n = ::write(to_child_, s.data() + done, s.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("it stopped reading its input");
    done += static_cast<size_t>(n);
  }
}

std::string Coprocess::read_line() {
  for (;;) {
    const size_t nl = buffered_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffered_.substr(0, nl);
      buffered_.erase(0, nl + 1);
      return line;
    }
    char buf[4096];
    const ssize_t n = ::read(from_child_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("it ended before answering");
    buffered_.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace pactq::cli
