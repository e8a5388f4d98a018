// ExecutionContext: what one caller needs to run a Model besides the model
// itself: activation buffers and worker threads. Each thread that runs a
// shared Model brings its own (as ONNX Runtime sessions and XNNPACK runtimes
// do); one context may serve several models, one run at a time.
#pragma once

#include <memory>

namespace pactq::rt {

namespace detail {
struct ContextState;
}

class ExecutionContext {
 public:
  // `threads` workers for each run, the caller included (>= 1).
  explicit ExecutionContext(int threads = 1);
  ExecutionContext(ExecutionContext&&) noexcept;
  ExecutionContext& operator=(ExecutionContext&&) noexcept;
  ~ExecutionContext();

  void set_threads(int n);  // values below 1 mean 1
  int threads() const;

 private:
  friend class Model;
  std::unique_ptr<detail::ContextState> state_;
};

}  // namespace pactq::rt
