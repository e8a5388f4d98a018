// ThreadPool: every index runs once, and an exception thrown in a region (on a
// worker or on the calling thread) reaches the caller only after every worker
// has left the region, leaving the pool usable.
#include "pactq/runtime/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace pactq::rt {
namespace {

using namespace std::chrono_literals;

// Counts the callables in flight: +1 on entry, -1 on exit, however they exit.
class InFlight {
 public:
  explicit InFlight(std::atomic<int>& n) : n_(n) { n_.fetch_add(1); }
  ~InFlight() { n_.fetch_sub(1); }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  std::atomic<int>& n_;
};

void expect_runs_every_index_once(ThreadPool& pool) {
  for (int round = 0; round < 3; ++round) {
    std::vector<std::atomic<int>> hits(1000);
    pool.parallel_for(1000, [&](int i) { hits[static_cast<size_t>(i)].fetch_add(1); });
    for (size_t i = 0; i < hits.size(); ++i) ASSERT_EQ(hits[i].load(), 1) << "index " << i;
  }
}

TEST(ThreadPool, RunsEveryIndexOnce) {
  for (int threads : {1, 2, 4}) {
    ThreadPool pool(threads);
    expect_runs_every_index_once(pool);
  }
}

TEST(ThreadPool, CallerExceptionWaitsForWorkers) {
  ThreadPool pool(3);
  const std::thread::id caller = std::this_thread::get_id();
  std::atomic<int> running{0};
  std::atomic<bool> caller_threw{false};
  try {
    pool.parallel_for(64, [&](int) {
      InFlight in(running);
      if (std::this_thread::get_id() == caller) {
        caller_threw = true;
        throw std::runtime_error("from the caller");
      }
      // A worker is still inside its index well after the caller threw.
      const auto deadline = std::chrono::steady_clock::now() + 2s;
      while (!caller_threw && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::yield();
      }
      std::this_thread::sleep_for(20ms);
    });
    ADD_FAILURE() << "parallel_for did not throw";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "from the caller");
  }
  EXPECT_EQ(running.load(), 0) << "a callable still runs after parallel_for threw";
  expect_runs_every_index_once(pool);
}

TEST(ThreadPool, WorkerExceptionReachesTheCaller) {
  ThreadPool pool(3);
  const std::thread::id caller = std::this_thread::get_id();
  std::atomic<int> running{0};
  const auto workers_throw = [&](int) {
    InFlight in(running);
    if (std::this_thread::get_id() != caller) throw std::bad_alloc();
    std::this_thread::sleep_for(1ms);
  };
  EXPECT_THROW(pool.parallel_for(64, workers_throw), std::bad_alloc);
  EXPECT_EQ(running.load(), 0);
  expect_runs_every_index_once(pool);
}

TEST(ThreadPool, ThrowingEverywhereRethrowsOne) {
  ThreadPool pool(4);
  for (int round = 0; round < 20; ++round) {
    std::atomic<int> running{0};
    try {
      pool.parallel_for(200, [&](int i) {
        InFlight in(running);
        if (i % 3 == 0) throw std::runtime_error("index " + std::to_string(i));
      });
      ADD_FAILURE() << "parallel_for did not throw";
    } catch (const std::runtime_error& e) {
      EXPECT_EQ(std::string(e.what()).rfind("index ", 0), 0u) << e.what();
    }
    EXPECT_EQ(running.load(), 0);
  }
  expect_runs_every_index_once(pool);
}

TEST(ThreadPool, SingleThreadPropagates) {
  ThreadPool pool(1);
  const auto two_throws = [](int i) {
    if (i == 2) throw std::logic_error("two");
  };
  EXPECT_THROW(pool.parallel_for(4, two_throws), std::logic_error);
  expect_runs_every_index_once(pool);
}

}  // namespace
}  // namespace pactq::rt
