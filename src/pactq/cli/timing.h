// Timing helpers shared by the benchmark subcommands.
#pragma once

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

namespace pactq::cli {

// The median of `v` (upper median for an even count).
inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Median seconds of `fn` over `reps` calls.
template <typename Fn>
double median_seconds(int reps, Fn&& fn) {
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return median(std::move(t));
}

// Lets the previous contender's idle threads stop spinning before the next is
// timed: OpenMP's default wait policy keeps LibTorch's (and a peer process's)
// threads spinning for milliseconds after each parallel region, and on 2
// cores a spinning neighbour halved the throughput measured right after it
// (ResNet20 runtime 3.8-6.3k img/s under OMP_WAIT_POLICY=active, 7.4-8.3k
// passive). 50 ms covers libgomp's default spin count.
inline void settle() {
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

}  // namespace pactq::cli
