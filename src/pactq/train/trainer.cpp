#include "pactq/train/trainer.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/utils.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <thread>
#include <tuple>
#include <vector>

#include "pactq/common/atomic_file.h"
#include "pactq/common/format.h"
#include "pactq/common/interrupt.h"
#include "pactq/common/memory_tuning.h"
#include "pactq/nn/alpha.h"
#include "pactq/nn/batch_norm.h"
#include "pactq/train/calibrate.h"
#include "pactq/train/checkpoint.h"
#include "pactq/train/compute_threads.h"
#include "pactq/train/cuda_graph_step.h"
#include "pactq/train/data_parallel.h"
#include "pactq/train/data_setup.h"
#include "pactq/train/device.h"
#include "pactq/train/distillation.h"
#include "pactq/train/divergence.h"
#include "pactq/train/evaluate.h"
#include "pactq/train/foreach_sgd.h"
#include "pactq/train/metrics_log.h"
#include "pactq/train/model_setup.h"
#include "pactq/train/optimizer.h"
#include "pactq/train/progress.h"
#include "pactq/train/schedule.h"
#include "pactq/train/step_metrics.h"

namespace pactq::train {
namespace {

using Clock = std::chrono::steady_clock;

// On a GPU, steps between host reads of the running loss/accuracy and of the
// alpha guard's finite check (each read is a sync that drains the queue). On
// the CPU a read is a memory load: every step, as before.
constexpr int64_t kGpuSyncEvery = 50;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

void set_lr(torch::optim::Optimizer& opt, double lr) {
  for (auto& group : opt.param_groups()) group.options().set_lr(lr);
}

// Resuming keeps the stored recipe; only how the run is executed may change.
TrainConfig merge_for_resume(const TrainConfig& stored, const TrainConfig& now) {
  TrainConfig c = stored;
  c.out = now.out;
  c.quiet = now.quiet;
  c.threads = now.threads;
  c.device = now.device;
  c.channels_last = now.channels_last;  // a layout: the same numbers up to summation order
  c.cuda_graph = now.cuda_graph;        // how the step is launched, not what it computes
  c.host_sync_every = now.host_sync_every;
  c.workers = now.workers;
  c.max_steps = now.max_steps;
  c.checkpoint_every = now.checkpoint_every;
  c.dist = now.dist;
  c.data_dir = now.data_dir.empty() ? stored.data_dir : now.data_dir;
  c.resume = true;
  return c;
}

// The running loss/accuracy sums of the epoch in progress start again.
void clear_epoch_sums(TrainState& state) {
  state.epoch_loss_sum = 0;
  state.epoch_correct = 0;
  state.epoch_seen = 0;
}

nlohmann::ordered_json alpha_row(models::QuantModel& model) {
  nlohmann::ordered_json row;
  for (const auto& [name, alpha] : nn::learned_alphas(model)) {
    row["alpha:" + name] = alpha.item<double>();
  }
  return row;
}

// The device of this rank: with several processes on a machine, CUDA device
// LOCAL_RANK (one GPU per process) unless --device names one.
at::Device rank_device(const TrainConfig& config) {
  const at::Device device = resolve_device(config.device);  // one clear line if unusable
  if (!device.is_cuda() || !config.dist.enabled() || config.device.find(':') != std::string::npos)
    return device;
  return resolve_device("cuda:" + std::to_string(config.dist.local_rank));
}

}  // namespace

TrainSummary run_training(TrainConfig config, const DeployedEvaluator& deployed) {
  const auto run_start = Clock::now();
  config.validate();
  config.dist = distributed::resolve(config.dist);
  const at::Device device = rank_device(config);
  // Processes sharing a machine share its cores.
  if (config.threads == 0 && config.dist.local_world_size > 1) {
    config.threads = std::max(
        1, static_cast<int>(std::thread::hardware_concurrency()) / config.dist.local_world_size);
  }
  DataParallel parallel(config.dist, device);
  const bool lead = parallel.lead();  // rank 0 alone writes files and prints progress
  if (!lead) config.quiet = true;
  if (lead) std::filesystem::create_directories(config.out);
  const std::string last_path = config.out + "/last.pt";
  const std::string best_path = config.out + "/best.pt";
  // Ctrl-C: the step in progress finishes, last.pt is written, then we stop.
  InterruptGuard interrupt;
  auto interrupted = [&](const TrainState& s) {
    return Interrupted(
        pactq::format("at epoch {}, step {}; {} holds the run (continue with --resume)",
                      s.epoch + 1, s.global_step, last_path));
  };
  // In a data-parallel run, rank 0's last.pt decides and is sent to the others.
  const std::string resume_path = parallel.share_checkpoint(last_path, config.resume);
  const bool resuming = !resume_path.empty();
  TrainState state;
  if (resuming) {
    const LoadedCheckpoint header = read_checkpoint_header(resume_path);
    const int stored_world = std::max(1, header.config.dist.world_size);
    if (stored_world != parallel.size()) {
      throw std::invalid_argument(pactq::format(
          "--resume: {} was written by a run of {} process(es), this one has {} (the data order "
          "and the batch size per step depend on it): resume with world size {}, or start a new "
          "--out",
          last_path, stored_world, parallel.size(), stored_world));
    }
    config = merge_for_resume(header.config, config);
    state = header.state;
    if (!lead) clear_epoch_sums(state);  // rank 0 holds the epoch's sums so far
  } else if (config.resume && !config.quiet) {
    std::fprintf(stderr, "resume: no checkpoint at %s yet, starting a new run\n",
                 last_path.c_str());
  }
  const int64_t sync_every = config.host_sync_every > 0 ? config.host_sync_every
                             : device.is_cuda()         ? kGpuSyncEvery
                                                        : 1;
  set_compute_threads(config.threads);
  tune_for_device(device);
  keep_freed_memory_mapped();
  // Denormal floats are 10-100x slower on x86 and carry no useful signal here.
  at::globalContext().setFlushDenormal(true);
  torch::manual_seed(config.seed);

  auto train_loader = make_train_loader(config);
  auto test_loader = make_test_loader(config);
  auto val_loader = make_val_loader(config);
  std::unique_ptr<data::DataLoader> test_pixels, val_pixels;
  if (config.eval_deployed) {
    if (!deployed) {
      throw std::invalid_argument("--eval-deployed: this caller has no deployed-model evaluator");
    }
    test_pixels = make_pixel_loader(config, false);
    val_pixels = make_pixel_loader(config, true);
  }
  const data::DatasetInfo info = train_loader->dataset().info();
  const int64_t classes = config.num_classes > 0 ? config.num_classes : info.num_classes;
  config.num_classes = static_cast<int>(classes);

  // Built (and --init-from loaded) on the CPU, then moved before the optimiser
  // takes its parameters; checkpoints load through the CPU (checkpoint.h).
  models::QuantModelPtr model = build_model(config, classes);
  if (!resuming && !config.init_from.empty()) {
    const InitReport report = load_float_weights(*model, config.init_from);
    if (!config.quiet)
      std::fprintf(stderr, "init from %s: %s\n", config.init_from.c_str(),
                   report.summary().c_str());
  }
  if (!device.is_cpu()) model->to(device);
  if (config.channels_last) use_channels_last(*model);
  auto optimizer = make_optimizer(config, *model);
  if (resuming) {
    load_checkpoint(resume_path, *model, optimizer.get());
    if (!config.quiet) {
      std::fprintf(stderr, "resumed from %s at epoch %lld, step %lld\n", last_path.c_str(),
                   static_cast<long long>(state.epoch + 1),
                   static_cast<long long>(state.global_step));
    }
  } else {
    if (!config.alpha_calibration.empty()) {
      const auto layers = calibrate_alphas(*model, *train_loader, config);
      if (!config.quiet) {
        std::string line;
        for (const auto& l : layers) line += pactq::format(" {}={:.3g}", l.name, l.alpha);
        std::fprintf(stderr, "alpha calibrated (%s, %d batches):%s\n",
                     config.alpha_calibration.c_str(), config.calibration_batches, line.c_str());
      }
    }
  }
  // Every rank from rank 0's weights (its calibrated alphas, say), then
  // gradients averaged over ranks at every step.
  parallel.broadcast_model(*model);
  parallel.attach(*model);
  std::unique_ptr<CudaGraphStep> graph;
  if (config.cuda_graph) {
    if (parallel.size() > 1) {
      throw std::invalid_argument(
          "--cuda-graph: not with several processes (the gradient all-reduce runs between the "
          "backward pass and the update, outside the graph)");
    }
    graph = std::make_unique<CudaGraphStep>(*model);
  }
  models::QuantModelPtr teacher = make_teacher(config, classes);
  if (teacher && !device.is_cpu()) teacher->to(device);
  if (teacher && config.channels_last) use_channels_last(*teacher);
  const std::string config_text = config.to_json().dump(2) + "\n";
  if (lead) {
    write_bytes_atomically(config.out + "/config.json", config_text.data(), config_text.size());
  }
  if (!config.quiet) {
    const std::string ranks =
        parallel.enabled()
            ? pactq::format(" x {} processes ({})", parallel.size(), parallel.backend())
            : "";
    std::fprintf(stderr,
                 "training %s on %s (%lld train / %lld test images), %s, %s, %d threads%s -> %s\n",
                 config.model.c_str(), info.name.c_str(),
                 static_cast<long long>(train_loader->num_samples() * parallel.size()),
                 static_cast<long long>(test_loader->dataset().size()),
                 config.precision_policy().summary().c_str(), device.str().c_str(),
                 at::get_num_threads(), ranks.c_str(), config.out.c_str());
  }

  TrainSummary summary;
  summary.out_dir = config.out;
  summary.world_size = parallel.size();
  summary.rank = parallel.rank();
  if (config.max_steps == 0) {  // just the initial model
    if (lead) save_checkpoint(last_path, config, *model, optimizer.get(), state);
    parallel.finish();
    return summary;
  }

  const int64_t batches = train_loader->num_batches();
  if (batches == 0) {
    throw std::invalid_argument("--batch-size " + std::to_string(config.batch_size) +
                                " is larger than the training set (" +
                                std::to_string(train_loader->num_samples()) + " images)");
  }
  const LrSchedule schedule(config.schedule, config.lr, config.epochs, config.warmup_epochs);
  std::optional<MetricsLog> metrics;
  if (lead) metrics.emplace(config.out);
  auto forward = [&](const at::Tensor& x) { return model->forward(x); };
  model->train();
  nn::AlphaGuard alpha_guard(*model, sync_every);
  StepMetrics step_metrics(device);
  // The deployed evaluation reads host memory: on a GPU it gets a CPU copy.
  auto deployed_eval = [&](data::DataLoader& pixels) {
    if (device.is_cpu()) return deployed(*model, config.mean, config.std, pixels);
    const models::QuantModelPtr host = cpu_copy(config, classes, *model);
    return deployed(*host, config.mean, config.std, pixels);
  };

  std::optional<nn::SyncBatchNormScope> sync_bn;
  if (config.sync_bn && parallel.enabled()) sync_bn.emplace(parallel.batch_norm_reducer());

  for (; state.epoch < config.epochs; ++state.epoch, state.batch_in_epoch = 0) {
    const auto epoch_start = Clock::now();
    if (state.batch_in_epoch == 0) clear_epoch_sums(state);
    train_loader->start_epoch(state.epoch, state.batch_in_epoch);
    train_loader->reset_wait_seconds();
    ProgressBar bar(pactq::format("epoch {}/{}", state.epoch + 1, config.epochs), batches,
                    !config.quiet);
    int64_t images_this_run = 0;
    double lr = 0;
    bool stopped = false;
    // Reads the device-side sums into `state` (one host read) and stops the run
    // if a loss since the last read was not finite. `images` is the batch of
    // the newest step, for locating the first non-finite value.
    auto take_metrics = [&](const at::Tensor& images) {
      const StepMetrics::Totals t = step_metrics.take();
      if (t.steps == 0) return;
      if (!std::isfinite(t.loss_sum)) {
        alpha_guard.check();  // a non-finite alpha names its layer first
        const std::string where = locate_non_finite(*model, images);
        const int64_t last = state.global_step + 1;
        throw std::runtime_error(pactq::format(
            "training diverged: loss is {} at epoch {}, {}{}; the last good checkpoint is kept at "
            "{} (try a lower --lr or --alpha-init)",
            t.loss_sum / static_cast<double>(t.seen), state.epoch + 1,
            t.steps == 1 ? pactq::format("step {}", last)
                         : pactq::format("steps {}..{}", last - t.steps + 1, last),
            where.empty() ? "" : "; first non-finite value in " + where, last_path));
      }
      state.epoch_loss_sum += t.loss_sum;
      state.epoch_correct += t.correct;
      state.epoch_seen += t.seen;
    };
    while (auto batch = train_loader->next()) {
      lr = schedule.at(state.epoch + static_cast<double>(state.batch_in_epoch) / batches);
      set_lr(*optimizer, lr);
      // From pinned memory when the device is CUDA; no copy on the CPU.
      at::Tensor images = batch->images.to(device, /*non_blocking=*/true);
      if (config.channels_last) images = to_channels_last(images);
      const at::Tensor labels = batch->labels.to(device, /*non_blocking=*/true);
      auto forward = [&](const at::Tensor& x, const at::Tensor& y) {
        const compat::AutocastScope autocast = autocast_for(device, config.amp);
        at::Tensor out = model->forward(x);
        at::Tensor l = at::cross_entropy_loss(out, y);
        if (teacher) l = distillation_loss(config, l, out, *teacher, x);
        return std::make_pair(l, out);
      };
      at::Tensor logits, loss;
      if (graph) {
        std::tie(loss, logits) = graph->run(images, labels, forward);  // backward included
      } else {
        optimizer->zero_grad();
        std::tie(loss, logits) = forward(images, labels);
      }
      step_metrics.add(loss, logits, labels);
      const int64_t n = labels.size(0);
      const int64_t step = state.global_step + 1;
      const bool at_limit = config.max_steps > 0 && step >= config.max_steps;
      const bool checkpoint_due = config.checkpoint_every > 0 &&
                                  step % config.checkpoint_every == 0 &&
                                  state.batch_in_epoch + 1 < batches;
      // Read before the update, so a non-finite loss stops the run with the
      // weights that produced it and no checkpoint is written past it.
      if (step_metrics.pending_steps() >= sync_every || at_limit || checkpoint_due ||
          state.batch_in_epoch + 1 == batches) {
        take_metrics(images);
      }
      if (!graph) {
        parallel.before_backward();
        loss.backward();
        parallel.after_backward();  // gradients averaged over ranks
      }
      optimizer_step(*optimizer, device);
      alpha_guard.after_step();
      images_this_run += n;
      ++state.global_step;
      ++state.batch_in_epoch;
      // Every rank stops at the same step, whichever saw the Ctrl-C (a launch
      // delivers it to each at its own moment): they agree every sync_every
      // steps, where the host reads the device anyway.
      const bool agree_now = !parallel.enabled() || state.global_step % sync_every == 0;
      const bool stop_now = agree_now && parallel.any(interrupt.requested());
      if (stop_now) take_metrics(images);  // the checkpoint below holds every step
      if (step_metrics.pending_steps() == 0) {
        const double elapsed = seconds_since(epoch_start);
        bar.update(
            state.batch_in_epoch,
            pactq::format("loss {:.3f} acc {:.1f}% {:.0f} img/s",
                          state.epoch_loss_sum / std::max<int64_t>(1, state.epoch_seen),
                          100.0 * state.epoch_correct / std::max<int64_t>(1, state.epoch_seen),
                          images_this_run / elapsed));
      }
      if (at_limit || stop_now || checkpoint_due) {
        alpha_guard.check();  // no checkpoint with a non-finite alpha
        parallel.gather_epoch_sums(state);
        if (lead) save_checkpoint(last_path, config, *model, optimizer.get(), state);
      }
      if (stop_now) throw interrupted(state);
      if (at_limit) {
        stopped = state.batch_in_epoch < batches;
        break;
      }
    }
    bar.finish();
    const double train_seconds = seconds_since(epoch_start);
    // Every rank trains as many images as the others: the group's throughput.
    summary.images_per_second =
        static_cast<double>(images_this_run * parallel.size()) / std::max(train_seconds, 1e-9);
    summary.data_wait_share = train_loader->wait_seconds() / std::max(train_seconds, 1e-9);
    summary.comm_wait_seconds_per_step = parallel.comm_wait_per_step();
    summary.steps = state.global_step;
    if (stopped) break;  // mid-epoch stop: checkpoint written, no evaluation

    // Every rank evaluates rank 0's model (BatchNorm statistics included) on
    // its shard of the evaluation sets; the results are summed.
    parallel.broadcast_buffers(*model);
    parallel.gather_epoch_sums(state);
    const EvalResult test = parallel.sum(evaluate(*model, forward, *test_loader, 0));
    std::optional<EvalResult> val, test_deployed, val_deployed;
    if (val_loader) val = parallel.sum(evaluate(*model, forward, *val_loader, 0));
    if (test_pixels) test_deployed = parallel.sum(deployed_eval(*test_pixels));
    if (val_pixels) val_deployed = parallel.sum(deployed_eval(*val_pixels));
    // best.pt: by validation when there is a split (the test set then stays
    // unseen by the choice), by the deployed model's accuracy when measured.
    const EvalResult& chosen =
        val ? (val_deployed ? *val_deployed : *val) : (test_deployed ? *test_deployed : test);
    const bool best = chosen.top1 > state.best_top1;
    if (best) state.best_top1 = chosen.top1;
    nlohmann::ordered_json row;
    row["epoch"] = state.epoch + 1;
    row["step"] = state.global_step;
    row["train_loss"] = state.epoch_loss_sum / std::max<int64_t>(1, state.epoch_seen);
    row["train_top1"] = 100.0 * state.epoch_correct / std::max<int64_t>(1, state.epoch_seen);
    row["test_loss"] = test.loss;
    row["test_top1"] = test.top1;
    row["test_top5"] = test.top5;
    if (test_deployed) row["test_top1_deployed"] = test_deployed->top1;
    if (val) {
      row["val_loss"] = val->loss;
      row["val_top1"] = val->top1;
    }
    if (val_deployed) row["val_top1_deployed"] = val_deployed->top1;
    row["lr"] = lr;
    row["seconds"] = train_seconds + test.seconds + (val ? val->seconds : 0) +
                     (test_deployed ? test_deployed->seconds : 0) +
                     (val_deployed ? val_deployed->seconds : 0);
    row["train_images_per_s"] = summary.images_per_second;
    row["data_wait_share"] = summary.data_wait_share;
    if (parallel.enabled()) {
      row["world_size"] = parallel.size();
      row["comm_wait_ms_per_step"] = 1000 * parallel.comm_wait_per_step();
    }
    const nlohmann::ordered_json alphas = alpha_row(*model);
    for (const auto& item : alphas.items()) row[item.key()] = item.value();
    if (metrics) metrics->append(row);

    TrainState next = state;
    ++next.epoch;
    next.batch_in_epoch = 0;
    clear_epoch_sums(next);
    alpha_guard.check();
    if (lead) save_checkpoint(last_path, config, *model, optimizer.get(), next);
    if (best && lead) {
      replace_file_atomically(best_path, [&](const std::string& temp) {
        std::filesystem::copy_file(last_path, temp,
                                   std::filesystem::copy_options::overwrite_existing);
      });
    }
    if (parallel.any(interrupt.requested())) throw interrupted(next);
    if (!config.quiet) {
      std::string extra;
      if (test_deployed) extra += pactq::format(" deployed {:.2f}%", test_deployed->top1);
      if (val) extra += pactq::format("  val top1 {:.2f}%", val->top1);
      if (val_deployed) extra += pactq::format(" deployed {:.2f}%", val_deployed->top1);
      std::fprintf(
          stderr,
          "epoch %lld/%d  train loss %.4f top1 %.2f%%  test loss %.4f top1 %.2f%% top5 %.2f%%%s  "
          "lr %.4g  %.0f img/s  data wait %.1f%%  %s\n",
          static_cast<long long>(state.epoch + 1), config.epochs, row["train_loss"].get<double>(),
          row["train_top1"].get<double>(), test.loss, test.top1, test.top5, extra.c_str(), lr,
          summary.images_per_second, 100 * summary.data_wait_share,
          format_duration(row["seconds"].get<double>()).c_str());
    }
    summary.final_test_top1 = test.top1;
    summary.final_test_top1_deployed = test_deployed ? test_deployed->top1 : -1;
    summary.final_val_top1 = val ? val->top1 : -1;
    summary.final_test_loss = test.loss;
    summary.epochs_done = state.epoch + 1;
    if (config.max_steps > 0 && state.global_step >= config.max_steps) break;
  }
  parallel.finish();
  summary.best_top1 = state.best_top1;
  summary.seconds = seconds_since(run_start);
  return summary;
}

}  // namespace pactq::train
