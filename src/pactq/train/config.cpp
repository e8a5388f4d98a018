#include "pactq/train/config.h"

#include <algorithm>
#include <stdexcept>

#include "pactq/models/registry.h"
#include "pactq/nn/alpha_calibration.h"
#include "pactq/quant/bits.h"
#include "pactq/train/device.h"

namespace pactq::train {

nn::PrecisionPolicy TrainConfig::precision_policy() const {
  nn::PrecisionPolicy p;
  p.wbits = quant::parse_bits(wbits, "--wbits");
  p.abits = quant::parse_bits(abits, "--abits");
  p.first_last = nn::parse_first_last(first_last);
  p.wquant = quant::parse_weight_quant(weight_quant);
  p.aquant = nn::parse_activation_kind(act_quant);
  for (const auto& o : overrides) p.overrides.push_back(nn::PrecisionOverride::parse(o));
  p.validate();
  return p;
}

void TrainConfig::validate() const {
  auto fail = [](const std::string& option, const std::string& why) {
    throw std::invalid_argument(option + ": " + why);
  };
  // The model first: a misspelt name must not surface as a data-directory error.
  try {
    models::model_info(model);
  } catch (const std::invalid_argument& e) {
    fail("--model", e.what());
  }
  precision_policy();
  if (epochs < 1) fail("--epochs", "must be at least 1");
  if (batch_size < 1) fail("--batch-size", "must be at least 1");
  if (optimizer != "sgd" && optimizer != "adam")
    fail("--optimizer", "'" + optimizer + "' (expected sgd or adam)");
  if (!(lr > 0)) fail("--lr", "must be positive");
  if (momentum < 0 || momentum >= 1) fail("--momentum", "must be in [0, 1)");
  if (weight_decay < 0) fail("--weight-decay", "must be >= 0");
  if (resolved_alpha_decay() < 0) fail("--alpha-decay", "must be >= 0");
  if (!(alpha_init > 0)) fail("--alpha-init", "must be positive");
  if (!alpha_calibration.empty()) nn::parse_alpha_calibration(alpha_calibration);
  if (calibration_batches < 1) fail("--calibration-batches", "must be at least 1");
  if (val_split < 0) fail("--val-split", "must be >= 0");
  if (!distill_from.empty()) {
    if (!(distill_weight >= 0 && distill_weight <= 1))
      fail("--distill-weight", "must be in [0, 1]");
    if (!(distill_temperature > 0)) fail("--distill-temperature", "must be positive");
  }
  if (warmup_epochs < 0) fail("--warmup-epochs", "must be >= 0");
  if (workers < 0) fail("--workers", "must be >= 0");
  if (threads < 0) fail("--threads", "must be >= 0");
  check_device_spec(device);  // the syntax; whether it is usable is checked where it is used
  check_amp_spec(amp);
  if (cuda_graph && device == "cpu") {
    throw std::invalid_argument(
        "--cuda-graph: needs a CUDA device (--device cuda), not --device cpu");
  }
  if (mean.size() != std.size()) fail("--mean/--std", "need the same number of channels");
  if (out.empty()) fail("--out", "must name a directory");
}

nlohmann::json TrainConfig::to_json() const {
  return {{"model", model},
          {"dataset", dataset},
          {"data_dir", data_dir},
          {"num_classes", num_classes},
          {"wbits", wbits},
          {"abits", abits},
          {"first_last", first_last},
          {"weight_quant", weight_quant},
          {"act_quant", act_quant},
          {"overrides", overrides},
          {"alpha_init", alpha_init},
          {"alpha_calibration", alpha_calibration},
          {"calibration_batches", calibration_batches},
          {"alpha_decay", resolved_alpha_decay()},  // stored resolved: the run is explicit
          {"epochs", epochs},
          {"batch_size", batch_size},
          {"optimizer", optimizer},
          {"lr", lr},
          {"momentum", momentum},
          {"weight_decay", weight_decay},
          {"schedule", schedule},
          {"warmup_epochs", warmup_epochs},
          {"init_from", init_from},
          {"distill_from", distill_from},
          {"distill_weight", distill_weight},
          {"distill_temperature", distill_temperature},
          {"mean", mean},
          {"std", std},
          {"workers", workers},
          {"limit_train", limit_train},
          {"limit_test", limit_test},
          {"train_files", train_files},
          {"val_split", val_split},
          {"eval_deployed", eval_deployed},
          {"skip_bad_images", skip_bad_images},
          {"augment", augment},
          {"out", out},
          {"seed", seed},
          {"threads", threads},
          {"device", device},
          {"amp", amp},
          {"channels_last", channels_last},
          {"cuda_graph", cuda_graph},
          {"max_steps", max_steps},
          {"checkpoint_every", checkpoint_every},
          {"quiet", quiet},
          {"world_size", std::max(1, dist.world_size)},
          {"sync_bn", sync_bn}};
}

TrainConfig TrainConfig::from_json(const nlohmann::json& j) {
  TrainConfig c;
  auto get = [&](const char* key, auto& field) {
    if (j.contains(key)) j.at(key).get_to(field);
  };
  get("model", c.model);
  get("dataset", c.dataset);
  get("data_dir", c.data_dir);
  get("num_classes", c.num_classes);
  get("wbits", c.wbits);
  get("abits", c.abits);
  get("first_last", c.first_last);
  get("weight_quant", c.weight_quant);
  get("act_quant", c.act_quant);
  get("overrides", c.overrides);
  get("alpha_init", c.alpha_init);
  get("alpha_calibration", c.alpha_calibration);
  get("calibration_batches", c.calibration_batches);
  if (j.contains("alpha_decay") && !j.at("alpha_decay").is_null()) {
    c.alpha_decay = j.at("alpha_decay").get<double>();
  }
  get("epochs", c.epochs);
  get("batch_size", c.batch_size);
  get("optimizer", c.optimizer);
  get("lr", c.lr);
  get("momentum", c.momentum);
  get("weight_decay", c.weight_decay);
  get("schedule", c.schedule);
  get("warmup_epochs", c.warmup_epochs);
  get("init_from", c.init_from);
  get("distill_from", c.distill_from);
  get("distill_weight", c.distill_weight);
  get("distill_temperature", c.distill_temperature);
  get("mean", c.mean);
  get("std", c.std);
  get("workers", c.workers);
  get("limit_train", c.limit_train);
  get("limit_test", c.limit_test);
  get("train_files", c.train_files);
  get("val_split", c.val_split);
  get("eval_deployed", c.eval_deployed);
  get("skip_bad_images", c.skip_bad_images);
  get("augment", c.augment);
  get("out", c.out);
  get("seed", c.seed);
  get("threads", c.threads);
  get("device", c.device);
  get("amp", c.amp);
  get("channels_last", c.channels_last);
  get("cuda_graph", c.cuda_graph);
  get("max_steps", c.max_steps);
  get("checkpoint_every", c.checkpoint_every);
  get("quiet", c.quiet);
  get("world_size", c.dist.world_size);
  get("sync_bn", c.sync_bn);
  return c;
}

}  // namespace pactq::train
