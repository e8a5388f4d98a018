#include "pactq/cli/train_options.h"

#include <stdexcept>
#include <string>

#include "pactq/nn/alpha_calibration.h"

namespace pactq::cli {

void add_model_options(CLI::App& cmd, train::TrainConfig& c) {
  cmd.add_option("--model", c.model, "model from `pactq models`")->capture_default_str();
  cmd.add_option("--dataset", c.dataset, "cifar10 | cifar100 | mnist | fashion-mnist | imagefolder")
      ->capture_default_str();
  cmd.add_option("--data-dir", c.data_dir,
                 "dataset directory (fashion-mnist defaults to the Debian package's)");
  cmd.add_option("--num-classes", c.num_classes, "classes (0: the dataset's)");
  cmd.add_option("--wbits", c.wbits, "weight bits: 1..8 or fp")->capture_default_str();
  cmd.add_option("--abits", c.abits, "activation bits: 1..8 or fp")->capture_default_str();
  cmd.add_option("--first-last", c.first_last, "first and last weight layers: fp | 8 | same")
      ->capture_default_str();
  cmd.add_option("--weight-quant", c.weight_quant, "dorefa | sawb")->capture_default_str();
  cmd.add_option("--act-quant", c.act_quant, "pact | clip (fixed alpha, DoReFa) | relu (fp only)")
      ->capture_default_str();
  cmd.add_option("--override", c.overrides,
                 "per-layer bits by glob, e.g. 'layer3.*=2', 'linear=w8'");
  cmd.add_option_function<std::string>(
         "--alpha-init",
         [&c](const std::string& value) {
           // A number, or "calibrate[:mse|:pNN.N]".
           if (value.rfind("calibrate", 0) == 0) {
             c.alpha_calibration = value.size() > 9 && value[9] == ':' ? value.substr(10) : "mse";
             nn::parse_alpha_calibration(c.alpha_calibration);  // names --alpha-init if bad
             return;
           }
           size_t used = 0;
           try {
             c.alpha_init = std::stod(value, &used);
           } catch (const std::exception&) {
             used = 0;
           }
           if (used != value.size() || value.empty()) {
             throw CLI::ValidationError(
                 "--alpha-init",
                 "expected a number or calibrate[:mse|:pNN.N], got '" + value + "'");
           }
           c.alpha_calibration.clear();
         },
         "initial PACT clipping level: a number (default 10), or 'calibrate' (each layer's alpha "
         "minimises its input's quantization error on --calibration-batches training batches of "
         "the initial model), or 'calibrate:pNN.N' (that percentile of the input)")
      ->type_name("ALPHA|calibrate[:mse|:pNN.N]");
  cmd.add_option("--calibration-batches", c.calibration_batches,
                 "batches that --alpha-init calibrate looks at")
      ->capture_default_str();
  cmd.add_option("--init-from", c.init_from,
                 "float weights (.safetensors) loaded by parameter name");
  cmd.add_option("--mean", c.mean,
                 "normalisation mean per channel (default: dataset's or --init-from's)")
      ->delimiter(',');
  cmd.add_option("--std", c.std, "normalisation std per channel")->delimiter(',');
  cmd.add_option("--batch-size", c.batch_size, "batch size")->capture_default_str();
  cmd.add_option("--workers", c.workers, "data loader threads")->capture_default_str();
  cmd.add_option("--threads", c.threads, "compute threads (0: all cores)")->capture_default_str();
  cmd.add_option("--device", c.device,
                 "cpu | cuda | cuda:N | auto (CUDA when this LibTorch has it and a device is "
                 "visible, else cpu)")
      ->capture_default_str();
  cmd.add_option("--amp", c.amp,
                 "off | bf16: run convolutions and linear layers in bfloat16 under autocast "
                 "(PACT and the loss stay float32)")
      ->capture_default_str();
  cmd.add_flag("--channels-last", c.channels_last,
               "keep convolution weights and batches in NHWC memory order (tensor-core GPUs "
               "want it; shapes and checkpoints do not change)");
  cmd.add_flag("--cuda-graph", c.cuda_graph,
               "CUDA: capture forward and backward once in a CUDA graph and replay it every "
               "step (one process; fixed batch shape)");
  cmd.add_option("--limit-test", c.limit_test, "evaluate on the first N test images only");
  cmd.add_flag("--skip-bad-images", c.skip_bad_images,
               "image folders: skip undecodable files with a warning instead of failing");
  cmd.add_flag("--quiet,-q", c.quiet, "no progress bar, only summaries");
}

void add_optimisation_options(CLI::App& cmd, train::TrainConfig& c) {
  cmd.add_option_function<double>(
      "--alpha-decay", [&c](const double& value) { c.alpha_decay = value; },
      "weight decay of the PACT alphas (the paper's lambda_alpha; same convention as "
      "--weight-decay: lambda*alpha added to the gradient, i.e. the penalty (lambda/2)*alpha^2); "
      "default: the --weight-decay value, as in the paper");
  cmd.add_option("--epochs", c.epochs, "epochs")->capture_default_str();
  cmd.add_option("--optimizer", c.optimizer, "sgd | adam")->capture_default_str();
  cmd.add_option("--lr", c.lr, "base learning rate")->capture_default_str();
  cmd.add_option("--momentum", c.momentum, "SGD momentum")->capture_default_str();
  cmd.add_option("--weight-decay", c.weight_decay, "weight decay")->capture_default_str();
  cmd.add_option("--schedule", c.schedule, "multistep:E1,E2[@F] | step:E[@F] | cosine | constant")
      ->capture_default_str();
  cmd.add_option("--warmup-epochs", c.warmup_epochs, "linear warm-up epochs")
      ->capture_default_str();
  cmd.add_option("--out", c.out, "output directory (metrics, config, checkpoints)")
      ->capture_default_str();
  cmd.add_flag("--resume", c.resume, "continue from OUT/last.pt if it exists");
  cmd.add_option("--seed", c.seed, "random seed")->capture_default_str();
  cmd.add_option("--max-steps", c.max_steps,
                 "stop after N optimiser steps (0: write the initial model's checkpoint)");
  cmd.add_option("--checkpoint-every", c.checkpoint_every,
                 "also checkpoint every N steps within an epoch");
  cmd.add_option("--limit-train", c.limit_train, "train on the first N images only");
  cmd.add_option("--train-files", c.train_files,
                 "CIFAR: the training files to read, e.g. data_batch_1.bin,data_batch_2.bin "
                 "(default: all of the split)")
      ->delimiter(',');
  cmd.add_option("--val-split", c.val_split,
                 "hold out N training images (fixed by --seed) for validation; best.pt is then "
                 "chosen on them, never on the test set");
  cmd.add_flag("--eval-deployed", c.eval_deployed,
               "also evaluate the deployed integer model (the .pqm semantics) each epoch and "
               "choose best.pt by it");
  cmd.add_option("--distill-from", c.distill_from,
                 "knowledge distillation from the float model of the same architecture "
                 "(.safetensors)");
  cmd.add_option("--distill-weight", c.distill_weight,
                 "weight w of the distillation term: (1-w)*CE + w*T^2*KL")
      ->capture_default_str();
  cmd.add_option("--distill-temperature", c.distill_temperature, "softmax temperature T")
      ->capture_default_str();
  cmd.add_flag("!--no-augment", c.augment, "disable training augmentation");
}

void add_distributed_options(CLI::App& cmd, train::TrainConfig& c) {
  const std::string group = "Distributed (each unset one from torchrun's environment)";
  cmd.add_option("--world-size", c.dist.world_size,
                 "processes training together (default WORLD_SIZE, else 1); --batch-size is "
                 "per process")
      ->group(group);
  cmd.add_option("--rank", c.dist.rank, "this process, 0 .. world size - 1 (default RANK)")
      ->group(group);
  cmd.add_option("--local-rank", c.dist.local_rank,
                 "this process on its machine; picks its GPU (default LOCAL_RANK, else --rank)")
      ->group(group);
  cmd.add_option("--master-addr", c.dist.master_addr,
                 "address of rank 0, which hosts the rendezvous store (default MASTER_ADDR, "
                 "else 127.0.0.1)")
      ->group(group);
  cmd.add_option("--master-port", c.dist.master_port,
                 "port of the rendezvous store (default MASTER_PORT, else 29500)")
      ->group(group);
  cmd.add_flag("--sync-bn", c.sync_bn,
               "synchronised BatchNorm: batch statistics over all ranks' batches (default: per "
               "rank, rank 0's running statistics kept)")
      ->group(group);
  cmd.add_option("--dist-timeout", c.dist.timeout_seconds,
                 "seconds after which a rank that has not joined, died or hung fails the others")
      ->capture_default_str()
      ->group(group);
}

}  // namespace pactq::cli
