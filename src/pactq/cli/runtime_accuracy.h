// A .pqm model's accuracy on a test set through the integer runtime: what
// `pactq run` prints and `pactq quickstart` reports as the deployed figure.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "pactq/runtime/model.h"

namespace pactq::cli {

struct RuntimeTestSet {
  std::string dataset = "cifar10";
  std::string data_dir;
  int64_t batch_size = 64;
  int64_t limit = 0;  // first N images (0: all)
  int workers = 2;
  int threads = 0;  // runtime workers (0: every core)
  bool keep_predictions = false;
};

struct RuntimeAccuracy {
  int64_t images = 0, correct = 0, batches = 0;
  int threads = 0;                   // the runtime workers used
  double seconds = 0;                // inside Model::run only
  std::vector<int64_t> predictions;  // test-set order, when kept
  double top1() const { return images ? 100.0 * correct / images : 0.0; }
};

// Throws naming `model_path` when the data set's images do not fit the model,
// and when the test set is empty.
RuntimeAccuracy runtime_accuracy(const rt::Model& m, const std::string& model_path,
                                 const RuntimeTestSet& set);

}  // namespace pactq::cli
