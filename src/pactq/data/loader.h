// Batching loader with prefetching worker threads.
//
// Determinism: the sample order of an epoch is a pure function of
// (seed, epoch) and each sample's augmentation RNG of (seed, epoch, dataset
// index), so batch b of epoch e is identical for any worker count, prefetch
// depth or thread schedule. Batches are delivered in index order.
#pragma once
#include <ATen/ATen.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "pactq/data/dataset.h"
#include "pactq/data/transforms.h"

namespace pactq::data {

struct Batch {
  at::Tensor images;  // float32 [B, C, H, W], normalised
  at::Tensor labels;  // int64 [B]
  int64_t epoch = 0;
  int64_t index = 0;  // batch index within the epoch
};

struct LoaderOptions {
  int64_t batch_size = 128;
  bool shuffle = false;
  uint64_t seed = 0;
  bool drop_last = false;
  int64_t limit = 0;  // > 0: use only the first `limit` samples of the dataset
  // A held-out split (--val-split): `holdout` samples chosen by a permutation
  // fixed by `holdout_seed` alone, so the training and validation loaders
  // agree and a resumed run sees the same split. The loader sees the rest
  // (holdout_only false) or only them; `limit` applies after.
  int64_t holdout = 0;
  uint64_t holdout_seed = 0;
  bool holdout_only = false;
  // Data-parallel training: this loader delivers shard `shard_index` of
  // `shard_count`, positions shard_index, shard_index + shard_count, ... of
  // each epoch's order, so batch b of every shard together holds exactly the
  // samples of batch b of one loader with shard_count times the batch size.
  // With drop_last every shard gets the same count (the tail that does not
  // divide evenly is dropped, as each rank must take the same steps); without
  // it the shards together cover every sample once (evaluation).
  int64_t shard_count = 1;
  int64_t shard_index = 0;
  int workers = 2;   // 0: build batches on the calling thread
  int prefetch = 4;  // batches built ahead of the consumer (>= workers used)
  // Build batches in page-locked memory, for non-blocking copies to a CUDA
  // device. Needs a CUDA LibTorch (allocating it throws on a CPU-only one).
  bool pin_memory = false;
};

class DataLoader {
 public:
  DataLoader(std::shared_ptr<const Dataset> dataset, Pipeline pipeline, LoaderOptions options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  int64_t num_samples() const { return num_samples_; }  // per epoch, after limit
  int64_t num_batches() const;                          // per epoch, after drop_last
  const LoaderOptions& options() const { return opt_; }
  const Dataset& dataset() const { return *dataset_; }
  const Pipeline& pipeline() const { return pipeline_; }

  // Starts producing epoch `epoch` from batch `first_batch` (resume), ending
  // any epoch in progress.
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  // The next batch of the current epoch in order, or nullopt at its end.
  // Rethrows (as DataError/runtime_error) any failure while building it.
  std::optional<Batch> next();

  // Builds one batch synchronously (no threads); same content as next().
  Batch make_batch(int64_t epoch, int64_t batch_index) const;
  // Dataset indices of the epoch in delivery order.
  std::vector<int64_t> epoch_order(int64_t epoch) const;

  // Cumulative seconds next() spent blocked waiting for data (with workers=0:
  // spent building batches), and the number of next() calls that returned a
  // batch.
  double wait_seconds() const { return wait_seconds_; }
  int64_t batches_delivered() const { return delivered_; }
  void reset_wait_seconds() { wait_seconds_ = 0; }

 private:
  struct Slot {
    Batch batch;
    std::exception_ptr error;
  };
  Batch build(int64_t epoch, int64_t batch_index, const std::vector<int64_t>& order) const;
  void worker_loop();
  void stop_workers();

  std::shared_ptr<const Dataset> dataset_;
  Pipeline pipeline_;
  LoaderOptions opt_;
  int64_t num_samples_ = 0;       // this shard's, per epoch
  int64_t total_samples_ = 0;     // all shards', after holdout and limit
  std::vector<int64_t> indices_;  // the dataset indices seen (holdout split); empty: all
  int64_t num_classes_ = 0;
  std::string dataset_name_;

  // Current epoch state.
  int64_t epoch_ = 0;
  std::vector<int64_t> order_;
  int64_t next_consume_ = 0;
  int64_t end_batch_ = 0;
  bool started_ = false;

  // Worker state, guarded by mu_.
  std::mutex mu_;
  std::condition_variable cv_ready_;
  std::condition_variable cv_space_;
  int64_t next_produce_ = 0;
  bool stop_ = false;
  std::map<int64_t, Slot> ready_;
  std::vector<std::thread> threads_;

  double wait_seconds_ = 0;
  int64_t delivered_ = 0;
};

}  // namespace pactq::data
