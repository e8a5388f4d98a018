// Data-parallel gradient averaging overlapped with backward, as DDP does it,
// on pactq's own small reducer (c10d::Reducer is internal API that changes
// between versions): parameters are grouped into buckets in reverse order of
// registration (roughly the order backward produces their gradients); a hook
// on each parameter copies its gradient into the bucket's flat buffer, and a
// full bucket is all-reduced at once, on Gloo's threads, while backward goes
// on. Buckets are launched strictly in index order, so every rank issues the
// same collectives in the same order. Sum, then divide: Gloo has no average.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "pactq/distributed/process_group.h"

namespace pactq::distributed {

class GradientReducer {
 public:
  // Small enough that ResNet20's 1.1 MB of gradients make several buckets
  // (so communication overlaps backward), large enough that each all-reduce
  // carries more than its latency.
  static constexpr int64_t kDefaultBucketBytes = 256 * 1024;

  GradientReducer(ProcessGroup& group, std::vector<at::Tensor> parameters,
                  int64_t bucket_bytes = kDefaultBucketBytes);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // Call before loss.backward(): arms the hooks for one step.
  void prepare();
  // Call after loss.backward(): reduces what is left (parameters that got no
  // gradient here count as zero), waits, and leaves every .grad the mean over
  // ranks; a parameter no rank's backward reached keeps its .grad untouched
  // (undefined after zero_grad), so the optimiser skips it as in one process.
  void finish();

  int64_t num_buckets() const { return static_cast<int64_t>(buckets_.size()); }
  // Cumulative seconds finish() spent waiting for communication that backward
  // did not hide, and the number of steps.
  double wait_seconds() const { return wait_seconds_; }
  int64_t steps() const { return steps_; }

 private:
  struct Bucket {
    std::vector<size_t> members;  // indices into params_
    std::vector<int64_t> offsets;
    at::Tensor flat;       // the members' gradients, then one arrival flag per member
    int64_t flags_at = 0;  // where the flags start
    int64_t pending = 0;
    std::unique_ptr<PendingReduce> reduce;
  };
  void on_gradient(size_t param, const at::Tensor& grad);
  void launch_ready();

  ProcessGroup& group_;
  std::vector<at::Tensor> params_;
  std::vector<unsigned> hook_handles_;
  std::vector<size_t> bucket_of_;     // per parameter
  std::vector<int64_t> offset_of_;    // per parameter, within its bucket
  std::vector<size_t> member_index_;  // per parameter, its place in its bucket's members
  std::vector<bool> arrived_;
  std::vector<Bucket> buckets_;
  size_t next_launch_ = 0;
  bool armed_ = false;
  double wait_seconds_ = 0;
  int64_t steps_ = 0;
};

// Copies rank `root`'s parameters and buffers into every rank's `tensors`
// (initial weights, BatchNorm statistics, a resumed checkpoint).
void broadcast_tensors(ProcessGroup& group, std::vector<at::Tensor> tensors, int root,
                       const std::string& what);

}  // namespace pactq::distributed
