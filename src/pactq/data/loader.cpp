#include "pactq/data/loader.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <numeric>

#include "pactq/common/format.h"
#include "pactq/data/rng.h"

namespace pactq::data {
namespace {
constexpr uint64_t kOrderStream = 0x6f72646572ULL;  // "order"
constexpr uint64_t kHoldoutStream = 0x686f6c64ULL;  // "hold"
constexpr uint64_t kAugStream = 0x617567ULL;        // "aug"
}  // namespace

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, Pipeline pipeline,
                       LoaderOptions options)
    : dataset_(std::move(dataset)), pipeline_(std::move(pipeline)), opt_(options) {
  if (!dataset_) throw DataError("DataLoader: null dataset");
  if (opt_.batch_size <= 0) {
    throw DataError(
        pactq::format("DataLoader: batch_size must be positive, got {}", opt_.batch_size));
  }
  if (opt_.workers < 0 || opt_.prefetch < 0 || opt_.limit < 0) {
    throw DataError("DataLoader: workers, prefetch and limit must be >= 0");
  }
  num_samples_ = dataset_->size();
  if (opt_.holdout < 0 || (opt_.holdout > 0 && opt_.holdout >= num_samples_)) {
    throw DataError(pactq::format("--val-split {}: must be between 0 and the {} training samples",
                                  opt_.holdout, num_samples_));
  }
  if (opt_.holdout > 0) {
    std::vector<int64_t> all(static_cast<size_t>(num_samples_));
    std::iota(all.begin(), all.end(), int64_t{0});
    Rng rng(mix_seed(opt_.holdout_seed, kHoldoutStream));
    for (int64_t i = num_samples_ - 1; i > 0; --i) {
      std::swap(all[i], all[static_cast<int64_t>(rng.below(static_cast<uint64_t>(i + 1)))]);
    }
    const auto split = all.begin() + opt_.holdout;
    indices_.assign(opt_.holdout_only ? all.begin() : split, opt_.holdout_only ? split : all.end());
    std::sort(indices_.begin(), indices_.end());
    num_samples_ = static_cast<int64_t>(indices_.size());
  }
  const DatasetInfo info = dataset_->info();
  num_classes_ = info.num_classes;
  dataset_name_ = info.name;
  if (opt_.limit > 0) num_samples_ = std::min(num_samples_, opt_.limit);
  if (opt_.shard_count < 1 || opt_.shard_index < 0 || opt_.shard_index >= opt_.shard_count) {
    throw DataError(pactq::format("DataLoader: shard {} of {} does not exist", opt_.shard_index,
                                  opt_.shard_count));
  }
  total_samples_ = num_samples_;
  num_samples_ = opt_.drop_last ? total_samples_ / opt_.shard_count
                                : (total_samples_ - opt_.shard_index + opt_.shard_count - 1) /
                                      opt_.shard_count;
}

DataLoader::~DataLoader() {
  stop_workers();
}

int64_t DataLoader::num_batches() const {
  return opt_.drop_last ? num_samples_ / opt_.batch_size
                        : (num_samples_ + opt_.batch_size - 1) / opt_.batch_size;
}

std::vector<int64_t> DataLoader::epoch_order(int64_t epoch) const {
  std::vector<int64_t> order(total_samples_);
  std::iota(order.begin(), order.end(), int64_t{0});
  if (opt_.shuffle) {
    Rng rng(mix_seed(opt_.seed, static_cast<uint64_t>(epoch), kOrderStream));
    for (int64_t i = total_samples_ - 1; i > 0; --i) {
      const auto j = static_cast<int64_t>(rng.below(static_cast<uint64_t>(i + 1)));
      std::swap(order[i], order[j]);
    }
  }
  if (!indices_.empty()) {
    for (auto& position : order) position = indices_[static_cast<size_t>(position)];
  }
  if (opt_.shard_count > 1) {
    std::vector<int64_t> shard(static_cast<size_t>(num_samples_));
    for (int64_t k = 0; k < num_samples_; ++k) {
      shard[static_cast<size_t>(k)] =
          order[static_cast<size_t>(opt_.shard_index + k * opt_.shard_count)];
    }
    return shard;
  }
  return order;
}

Batch DataLoader::build(int64_t epoch, int64_t batch_index,
                        const std::vector<int64_t>& order) const {
  const int64_t begin = batch_index * opt_.batch_size;
  const int64_t end = std::min(begin + opt_.batch_size, num_samples_);
  const int64_t n = end - begin;
  const int64_t c = pipeline_.channels(), h = pipeline_.out_height(), w = pipeline_.out_width();
  Batch b;
  b.epoch = epoch;
  b.index = batch_index;
  // Pinned from the start when asked: pinning afterwards would copy.
  b.images = at::empty({n, c, h, w}, at::TensorOptions(at::kFloat).pinned_memory(opt_.pin_memory));
  b.labels = at::empty({n}, at::TensorOptions(at::kLong).pinned_memory(opt_.pin_memory));
  float* img = b.images.data_ptr<float>();
  int64_t* lab = b.labels.data_ptr<int64_t>();
  const int64_t per = c * h * w;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t idx = order[begin + i];
    Sample s = dataset_->get(idx);
    if (s.label < 0 || (num_classes_ > 0 && s.label >= num_classes_)) {
      throw DataError(pactq::format("dataset {} sample {}: label {} out of range 0..{}",
                                    dataset_name_, idx, s.label, num_classes_ - 1));
    }
    Rng rng(
        mix_seed(opt_.seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(idx), kAugStream));
    pipeline_.apply(s.image, rng, img + i * per);
    lab[i] = s.label;
  }
  return b;
}

Batch DataLoader::make_batch(int64_t epoch, int64_t batch_index) const {
  if (batch_index < 0 || batch_index >= num_batches()) {
    throw DataError(pactq::format("DataLoader: batch index {} out of range (epoch has {} batches)",
                                  batch_index, num_batches()));
  }
  return build(epoch, batch_index, epoch_order(epoch));
}

void DataLoader::stop_workers() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_space_.notify_all();
  cv_ready_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
  std::lock_guard<std::mutex> lk(mu_);
  ready_.clear();
  stop_ = false;
}

void DataLoader::start_epoch(int64_t epoch, int64_t first_batch) {
  stop_workers();
  if (first_batch < 0 || first_batch > num_batches()) {
    throw DataError(pactq::format("DataLoader: first batch {} out of range (epoch has {} batches)",
                                  first_batch, num_batches()));
  }
  epoch_ = epoch;
  order_ = epoch_order(epoch);
  next_consume_ = first_batch;
  end_batch_ = num_batches();
  next_produce_ = first_batch;
  started_ = true;
  const int64_t todo = end_batch_ - first_batch;
  const int nthreads = static_cast<int>(std::min<int64_t>(opt_.workers, todo));
  for (int i = 0; i < nthreads; ++i) threads_.emplace_back([this] { worker_loop(); });
}

void DataLoader::worker_loop() {
  const int64_t depth = std::max<int64_t>({int64_t{1}, opt_.prefetch, opt_.workers});
  std::unique_lock<std::mutex> lk(mu_);
  while (true) {
    cv_space_.wait(lk, [&] {
      return stop_ || next_produce_ >= end_batch_ || next_produce_ < next_consume_ + depth;
    });
    if (stop_ || next_produce_ >= end_batch_) return;
    const int64_t b = next_produce_++;
    lk.unlock();
    Slot slot;
    try {
      slot.batch = build(epoch_, b, order_);
    } catch (...) {
      slot.error = std::current_exception();
    }
    lk.lock();
    ready_.emplace(b, std::move(slot));
    cv_ready_.notify_all();
  }
}

std::optional<Batch> DataLoader::next() {
  if (!started_) throw DataError("DataLoader: call start_epoch() before next()");
  if (next_consume_ >= end_batch_) {
    stop_workers();
    return std::nullopt;
  }
  const auto t0 = std::chrono::steady_clock::now();
  Slot slot;
  if (threads_.empty()) {
    try {
      slot.batch = build(epoch_, next_consume_, order_);
    } catch (...) {
      slot.error = std::current_exception();
    }
  } else {
    std::unique_lock<std::mutex> lk(mu_);
    cv_ready_.wait(lk, [&] { return ready_.count(next_consume_) > 0; });
    auto it = ready_.find(next_consume_);
    slot = std::move(it->second);
    ready_.erase(it);
  }
  wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  {
    std::lock_guard<std::mutex> lk(mu_);
    ++next_consume_;
  }
  cv_space_.notify_all();
  if (slot.error) {
    stop_workers();
    next_consume_ = end_batch_;
    std::rethrow_exception(slot.error);
  }
  ++delivered_;
  return std::move(slot.batch);
}

}  // namespace pactq::data
