// A c10 allocator that wraps another and counts live and peak bytes (LibTorch
// 1.13 exposes no CPU allocator statistics). Used by measure_step_memory
// (step_benchmark.cpp); a header of its own so that tests/compat/ can compile
// it against the LibTorch 2.3+ allocator signature as well as the installed one.
#pragma once
#include <c10/core/Allocator.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "pactq/common/torch_compat.h"

namespace pactq::train {

// The context of each DataPtr must be its data pointer (raw_allocate relies on
// it), so sizes live in a side table. One instance at a time (the deleter is a
// plain function and finds it through a static pointer).
class CountingAllocator final : public compat::AllocatorBase {
 public:
  explicit CountingAllocator(c10::Allocator* base) : base_(base) { self_ = this; }
  c10::DeleterFnPtr raw_deleter() const override { return &CountingAllocator::release; }
  void reset_peak() {
    std::lock_guard<std::mutex> lock(mu_);
    peak_ = live_;
  }
  int64_t live() const {
    std::lock_guard<std::mutex> lock(mu_);
    return live_;
  }
  int64_t peak() const {
    std::lock_guard<std::mutex> lock(mu_);
    return peak_;
  }
  c10::Allocator* base() const { return base_; }

 protected:
  c10::DataPtr allocate_data(size_t n) const override {
    c10::DataPtr inner = base_->allocate(n);
    void* data = inner.get();
    const c10::Device device = inner.device();
    {
      std::lock_guard<std::mutex> lock(mu_);
      live_ += static_cast<int64_t>(n);
      peak_ = std::max(peak_, live_);
      blocks_.emplace(data, Block{std::move(inner), n});
    }
    return {data, data, &CountingAllocator::release, device};
  }

 private:
  struct Block {
    c10::DataPtr inner;
    size_t bytes;
  };
  static void release(void* data) {
    if (data == nullptr) return;
    c10::DataPtr inner;
    {
      std::lock_guard<std::mutex> lock(self_->mu_);
      auto it = self_->blocks_.find(data);
      if (it == self_->blocks_.end()) return;
      self_->live_ -= static_cast<int64_t>(it->second.bytes);
      inner = std::move(it->second.inner);
      self_->blocks_.erase(it);
    }
    // `inner` frees the memory here, outside the lock.
  }
  static inline CountingAllocator* self_ = nullptr;
  c10::Allocator* base_;
  mutable std::mutex mu_;
  mutable int64_t live_ = 0;
  mutable int64_t peak_ = 0;
  mutable std::unordered_map<void*, Block> blocks_;
};

static_assert(!std::is_abstract_v<CountingAllocator>,
              "CountingAllocator must implement every pure virtual of this c10::Allocator");

}  // namespace pactq::train
