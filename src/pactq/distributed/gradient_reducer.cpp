#include "pactq/distributed/gradient_reducer.h"

#include <algorithm>
#include <chrono>

#include "pactq/common/format.h"

namespace pactq::distributed {

GradientReducer::GradientReducer(ProcessGroup& group, std::vector<at::Tensor> parameters,
                                 int64_t bucket_bytes)
    : group_(group), params_(std::move(parameters)) {
  const size_t n = params_.size();
  bucket_of_.resize(n);
  offset_of_.resize(n);
  member_index_.resize(n);
  arrived_.assign(n, false);
  // Reverse order; a new bucket when full or when dtype/device change (one
  // flat buffer holds one kind of tensor).
  for (size_t k = n; k-- > 0;) {
    const at::Tensor& p = params_[k];
    const int64_t bytes = p.numel() * static_cast<int64_t>(p.element_size());
    const bool fresh =
        buckets_.empty() || buckets_.back().flat.scalar_type() != p.scalar_type() ||
        buckets_.back().flat.device() != p.device() ||
        (buckets_.back().offsets.back() > 0 &&
         buckets_.back().offsets.back() * static_cast<int64_t>(p.element_size()) + bytes >
             bucket_bytes);
    if (fresh) {
      Bucket b;
      b.flat = at::empty({0}, p.options());
      b.offsets.push_back(0);
      buckets_.push_back(std::move(b));
    }
    Bucket& b = buckets_.back();
    bucket_of_[k] = buckets_.size() - 1;
    offset_of_[k] = b.offsets.back();
    member_index_[k] = b.members.size();
    b.members.push_back(k);
    b.offsets.push_back(b.offsets.back() + p.numel());
  }
  // Behind each bucket's gradients, one flag per member: 1 where this rank's
  // backward produced its gradient. All-reduced with them, they count the
  // ranks that did, so a parameter no rank reached keeps no gradient (as in
  // one process) rather than a zero that weight decay and momentum would use.
  for (Bucket& b : buckets_) {
    b.flags_at = b.offsets.back();
    b.flat = at::zeros({b.flags_at + static_cast<int64_t>(b.members.size())}, b.flat.options());
    b.offsets.pop_back();
  }
  for (size_t k = 0; k < n; ++k) {
    hook_handles_.push_back(
        params_[k].register_hook([this, k](const at::Tensor& grad) { on_gradient(k, grad); }));
  }
}

GradientReducer::~GradientReducer() {
  for (size_t k = 0; k < params_.size(); ++k) params_[k].remove_hook(hook_handles_[k]);
}

void GradientReducer::prepare() {
  for (Bucket& b : buckets_) {
    b.pending = static_cast<int64_t>(b.members.size());
    b.reduce.reset();
    b.flat.narrow(0, b.flags_at, static_cast<int64_t>(b.members.size())).zero_();
  }
  arrived_.assign(params_.size(), false);
  next_launch_ = 0;
  armed_ = true;
}

void GradientReducer::on_gradient(size_t param, const at::Tensor& grad) {
  if (!armed_ || arrived_[param]) return;  // outside a step (or a second pass)
  arrived_[param] = true;
  Bucket& b = buckets_[bucket_of_[param]];
  b.flat.narrow(0, offset_of_[param], grad.numel()).copy_(grad.reshape(-1));
  b.flat.narrow(0, b.flags_at + static_cast<int64_t>(member_index_[param]), 1).fill_(1);
  if (--b.pending == 0) launch_ready();
}

void GradientReducer::launch_ready() {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].pending == 0) {
    Bucket& b = buckets_[next_launch_];
    b.reduce = group_.allreduce_sum_async(
        b.flat,
        pactq::format("all-reducing gradient bucket {} of {}", next_launch_ + 1, buckets_.size()));
    ++next_launch_;
  }
}

void GradientReducer::finish() {
  // Parameters backward did not reach here: zero gradient, flag 0.
  bool all_here = true;
  for (size_t k = 0; k < params_.size(); ++k) {
    if (arrived_[k]) continue;
    all_here = false;
    arrived_[k] = true;
    Bucket& b = buckets_[bucket_of_[k]];
    b.flat.narrow(0, offset_of_[k], params_[k].numel()).zero_();
    --b.pending;
  }
  launch_ready();
  armed_ = false;
  const auto start = std::chrono::steady_clock::now();
  const double scale = 1.0 / group_.size();
  for (Bucket& b : buckets_) {
    b.reduce->wait();
    // The ranks that produced each member's gradient (exact small integers),
    // read only when this rank missed one (every member counts >= 1 otherwise),
    // so the usual step has no device-to-host copy.
    at::Tensor counts;
    if (!all_here) {
      counts = b.flat.narrow(0, b.flags_at, static_cast<int64_t>(b.members.size()))
                   .to(at::kCPU, at::kFloat)
                   .contiguous();
    }
    b.flat.mul_(scale);
    for (size_t i = 0; i < b.members.size(); ++i) {
      // No rank reached it: leave .grad as one process would.
      if (counts.defined() && counts.data_ptr<float>()[i] == 0.f) continue;
      at::Tensor& p = params_[b.members[i]];
      const at::Tensor mean = b.flat.narrow(0, b.offsets[i], p.numel()).view_as(p);
      if (p.grad().defined()) {
        p.mutable_grad().copy_(mean);
      } else {
        p.mutable_grad() = mean.clone();
      }
    }
  }
  wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ++steps_;
}

void broadcast_tensors(ProcessGroup& group, std::vector<at::Tensor> tensors, int root,
                       const std::string& what) {
  if (tensors.empty()) return;
  // One flat buffer per dtype/device: a single collective each, not one per tensor.
  std::vector<std::vector<at::Tensor>> kinds;
  for (const at::Tensor& t : tensors) {
    auto it = std::find_if(kinds.begin(), kinds.end(), [&](const std::vector<at::Tensor>& k) {
      return k.front().scalar_type() == t.scalar_type() && k.front().device() == t.device();
    });
    if (it == kinds.end()) {
      kinds.push_back({t});
    } else {
      it->push_back(t);
    }
  }
  for (auto& kind : kinds) {
    std::vector<at::Tensor> flat_parts;
    for (const at::Tensor& t : kind) flat_parts.push_back(t.detach().reshape(-1));
    std::vector<at::Tensor> flat{at::cat(flat_parts)};
    group.broadcast(flat, root, what);
    int64_t offset = 0;
    at::NoGradGuard no_grad;
    for (at::Tensor& t : kind) {
      t.detach().copy_(flat[0].narrow(0, offset, t.numel()).view_as(t));
      offset += t.numel();
    }
  }
}

}  // namespace pactq::distributed
