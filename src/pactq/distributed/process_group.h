// A data-parallel group of processes on PyTorch's c10d: a TCPStore for the
// rendezvous (hosted by rank 0, or by torchrun's agent), Gloo for CPU tensors,
// NCCL for CUDA ones when this LibTorch has it. Every failure (a rank that
// never joins, dies or hangs past --dist-timeout) becomes one DistError line
// that names the rank at fault.
#pragma once
#include <ATen/ATen.h>
#include <c10/core/Device.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "pactq/distributed/options.h"

namespace pactq::distributed {

struct DistError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A collective in flight (GradientReducer overlaps them with backward).
class PendingReduce {
 public:
  virtual ~PendingReduce() = default;
  virtual void wait() = 0;  // throws DistError
};

class ProcessGroup {
 public:
  // Joins the group within options.timeout_seconds; `device` chooses Gloo
  // (CPU) or NCCL (CUDA). Throws DistError naming the ranks that did not join.
  static std::unique_ptr<ProcessGroup> connect(const DistOptions& options,
                                               const at::Device& device);
  virtual ~ProcessGroup() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;  // "gloo" or "nccl"

  // In-place collectives; `what` names the operation in error messages.
  virtual void broadcast(std::vector<at::Tensor>& tensors, int root, const std::string& what) = 0;
  virtual void allreduce_sum(at::Tensor& tensor, const std::string& what) = 0;
  virtual std::unique_ptr<PendingReduce> allreduce_sum_async(at::Tensor& tensor,
                                                             const std::string& what) = 0;
  virtual void barrier(const std::string& what) = 0;
  // Tells the others this rank ends normally (not a failure to report).
  virtual void leave() = 0;
};

}  // namespace pactq::distributed
