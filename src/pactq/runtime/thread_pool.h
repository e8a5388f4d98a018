// A small fixed thread pool: parallel_for over an index range, the calling
// thread participates. Not reentrant (one parallel_for at a time per pool).
//
// An exception thrown by the callable (on a worker or on the caller) ends the
// region early: indices not yet started are skipped, parallel_for waits until
// every worker has left the callable, then rethrows the first exception on the
// caller. The pool stays usable.
//
// Idle workers and a waiting caller spin for a short while (kSpin) before
// sleeping on a condition variable: a batch-1 network issues one parallel_for
// per layer, microseconds apart, and a futex wake-up per layer cost more than
// the layers themselves (ResNet20 batch 1: 0.19 ms on one thread, 0.41 ms on
// two, before the spin).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace pactq::rt {

class ThreadPool {
 public:
  // `threads` = total workers including the caller (>= 1).
  explicit ThreadPool(int threads = 1);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }
  // Runs fn(i) for every i in [0, n), indices handed out one at a time.
  // Rethrows the first exception fn threw, once no worker runs fn any more.
  void parallel_for(int n, const std::function<void(int)>& fn);

  // How long a worker (or the caller) polls before it sleeps.
  static constexpr std::chrono::microseconds kSpin{200};

 private:
  void worker_loop();
  void drain();

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_work_, cv_done_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
  const std::function<void(int)>* fn_ = nullptr;
  int n_ = 0;
  std::atomic<int> next_{0};
  std::atomic<int> active_{0};  // workers still inside the current job
  std::exception_ptr error_;    // the job's first exception (under mu_)
};

}  // namespace pactq::rt
