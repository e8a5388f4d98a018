#include "pactq/train/compute_threads.h"

#include <ATen/Parallel.h>

#include <thread>

namespace pactq::train {

int set_compute_threads(int requested) {
  const int hardware = static_cast<int>(std::thread::hardware_concurrency());
  const int threads = requested > 0 ? requested : (hardware > 0 ? hardware : 1);
  if (at::get_num_threads() != threads) at::set_num_threads(threads);
  return at::get_num_threads();
}

}  // namespace pactq::train
