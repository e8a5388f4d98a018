// A child process spoken to line by line over its stdin/stdout, for benchmark
// peers that must interleave their timed rounds with ours in one run (a peer
// started afresh per round would pay its start-up and calibration each time).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace pactq::cli {

class Coprocess {
 public:
  // Starts argv[0] (looked up in PATH) with `argv`; `what` names it in errors
  // ("--peer: ..."). Its stderr goes to a temporary file whose tail is quoted
  // when it fails.
  Coprocess(const std::vector<std::string>& argv, std::string what);
  ~Coprocess();  // closes its stdin, waits a moment, then kills it
  Coprocess(const Coprocess&) = delete;
  Coprocess& operator=(const Coprocess&) = delete;

  void write_line(const std::string& line);
  // The next line of its stdout (without '\n'); throws, naming the child, its
  // exit status and its stderr's tail, when it ends first.
  std::string read_line();

 private:
  [[noreturn]] void fail(const std::string& why);
  std::string what_;
  pid_t pid_ = -1;
  int to_child_ = -1, from_child_ = -1;
  std::string stderr_path_;
  std::string buffered_;
};

}  // namespace pactq::cli
