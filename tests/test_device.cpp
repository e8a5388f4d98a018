// --device on a machine without CUDA (CI, Debian's LibTorch): every spec gives
// the CPU or one clear line; the device-side bookkeeping the GPU path relies
// on (alpha guard, step metrics) does no host read per step; batches are
// pinned only for CUDA; the deferred checks still stop a diverging run.
#include <gtest/gtest.h>
#include <torch/optim/sgd.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>

#include "pactq/common/torch_compat.h"
#include "pactq/nn/alpha.h"
#include "pactq/nn/pact_relu.h"
#include "pactq/train/checkpoint.h"
#include "pactq/train/data_setup.h"
#include "pactq/train/device.h"
#include "pactq/train/model_setup.h"
#include "pactq/train/optimizer.h"
#include "pactq/train/safetensors.h"
#include "pactq/train/step_metrics.h"
#include "pactq/train/trainer.h"
#include "train_test_util.h"

namespace fs = std::filesystem;
using namespace pactq::train;

namespace {

const std::string kExe = std::string(PACTQ_BINARY_DIR) + "/pactq";
const std::string kFashion = "/usr/share/datasets/fashion-mnist";

std::string temp_dir(const std::string& tag) {
  std::string pattern = (fs::temp_directory_path() / ("pactq_" + tag + "_XXXXXX")).string();
  return mkdtemp(pattern.data());
}

// The message resolve_device throws for `spec` ("" if none).
std::string device_error(const std::string& spec) {
  try {
    resolve_device(spec);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

struct Output {
  int status = 0;
  std::string text;  // stdout and stderr
};
Output run_pactq(const std::string& args) {
  Output o;
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen((kExe + " " + args + " 2>&1").c_str(), "r"),
                                             pclose);
  std::array<char, 4096> buf{};
  while (fgets(buf.data(), buf.size(), pipe.get()) != nullptr) o.text += buf.data();
  o.status = pclose(pipe.release());
  return o;
}

// act1 -> act2: two learned alphas.
struct TwoActsImpl : torch::nn::Module {
  TwoActsImpl() {
    act1 = register_module("act1", pactq::nn::PactReLU());
    act2 = register_module("act2", pactq::nn::PactReLU());
  }
  pactq::nn::PactReLU act1{nullptr}, act2{nullptr};
};
TORCH_MODULE(TwoActs);

void set_alpha(pactq::nn::PactReLU& act, float value) {
  at::NoGradGuard no_grad;
  act->alpha.fill_(value);
}

}  // namespace

TEST(DeviceSelection, EverySpecOnThisMachine) {
  EXPECT_EQ(resolve_device("cpu"), at::Device(at::kCPU));
  for (const char* bad : {"gpu", "", "cuda:", "cuda:x", "cuda:-1", "cuda0", "CPU", "cuda:1:2"}) {
    const std::string what = device_error(bad);
    EXPECT_NE(what.find("--device"), std::string::npos) << bad << ": " << what;
    EXPECT_NE(what.find("expected cpu, cuda, cuda:N or auto"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    EXPECT_THROW(check_device_spec(bad), std::invalid_argument) << bad;
  }
  for (const char* ok : {"cpu", "auto", "cuda", "cuda:0", "cuda:12"}) {
    EXPECT_NO_THROW(check_device_spec(ok)) << ok;
  }
  if (!pactq::compat::cuda_compiled()) {  // Debian's LibTorch: CI
    EXPECT_EQ(resolve_device("auto"), at::Device(at::kCPU));
    for (const char* spec : {"cuda", "cuda:0", "cuda:3"}) {
      const std::string what = device_error(spec);
      EXPECT_EQ(what.rfind(std::string("--device ") + spec + ":", 0), 0u) << what;
      EXPECT_NE(what.find("CPU-only LibTorch"), std::string::npos) << what;
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    }
    EXPECT_EQ(pactq::compat::cuda_device_count(), 0);
    return;
  }
  // A CUDA LibTorch (the GPU check): a usable device, or one line saying why not.
  const int64_t count = pactq::compat::cuda_device_count();
  if (count == 0) {
    EXPECT_NE(device_error("cuda").find("sees no CUDA device"), std::string::npos);
    EXPECT_EQ(resolve_device("auto"), at::Device(at::kCPU));
    return;
  }
  EXPECT_EQ(resolve_device("auto"), at::Device(at::kCUDA, 0));
  EXPECT_EQ(resolve_device("cuda"), at::Device(at::kCUDA, 0));
  const std::string past = "cuda:" + std::to_string(count);
  EXPECT_NE(device_error(past).find("only " + std::to_string(count) + " CUDA device(s)"),
            std::string::npos)
      << device_error(past);
}

TEST(DeviceSelection, TheCommandLineSaysWhyInOneLine) {
  const std::string dir = temp_dir("devcli");
  const std::string cuda_why = pactq::compat::cuda_compiled() ? "" : "CPU-only LibTorch";
  for (const std::string& cmd : std::vector<std::string>{
           "train --model lenet5 --dataset synthetic --max-steps 1 --out " + dir + "/r --device ",
           "eval " + dir + "/none.pt --device ", std::string("bench train --steps 1 --device ")}) {
    const Output bad = run_pactq(cmd + "tpu");
    EXPECT_NE(bad.status, 0) << cmd;
    EXPECT_EQ(bad.text, "pactq: error: --device 'tpu': expected cpu, cuda, cuda:N or auto\n")
        << cmd;
    if (!cuda_why.empty()) {
      const Output cuda = run_pactq(cmd + "cuda:0");
      EXPECT_NE(cuda.status, 0) << cmd;
      EXPECT_EQ(cuda.text.rfind("pactq: error: --device cuda:0: ", 0), 0u) << cuda.text;
      EXPECT_NE(cuda.text.find(cuda_why), std::string::npos) << cuda.text;
      EXPECT_EQ(std::count(cuda.text.begin(), cuda.text.end(), '\n'), 1) << cuda.text;
    }
  }
  EXPECT_FALSE(fs::exists(dir + "/r/last.pt"));  // nothing ran
  fs::remove_all(dir);
}

TEST(DeviceAlphaGuard, FloorEveryStepWithoutHostReads) {
  TwoActs net;
  pactq::nn::AlphaGuard guard(*net, /*check_every=*/1000, /*floor=*/1e-3);
  for (int step = 0; step < 3; ++step) {
    set_alpha(net->act1, -0.5f - step);
    set_alpha(net->act2, 2.0f);
    guard.after_step();
    EXPECT_FLOAT_EQ(net->act1->alpha.item<float>(), 1e-3f) << step;  // the floor, each step
    EXPECT_FLOAT_EQ(net->act2->alpha.item<float>(), 2.0f) << step;
  }
  EXPECT_EQ(guard.host_reads(), 0);
  // -Inf at one step: clamped to the floor on the device, still reported at
  // the next check with the value it had, naming the layer.
  set_alpha(net->act2, -std::numeric_limits<float>::infinity());
  guard.after_step();
  EXPECT_FLOAT_EQ(net->act2->alpha.item<float>(), 1e-3f);
  guard.after_step();
  EXPECT_EQ(guard.host_reads(), 0);
  try {
    guard.check();
    FAIL() << "a non-finite alpha went unreported";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("'act2' became -inf"), std::string::npos) << what;
  }
  EXPECT_EQ(guard.host_reads(), 1);
  // check_every N: the check (one read) runs on every Nth step by itself.
  pactq::nn::AlphaGuard every3(*net, 3);
  for (int i = 0; i < 6; ++i) every3.after_step();
  EXPECT_EQ(every3.host_reads(), 2);
  set_alpha(net->act1, std::numeric_limits<float>::quiet_NaN());
  every3.after_step();
  every3.after_step();
  EXPECT_THROW(every3.after_step(), std::runtime_error);
}

TEST(DeviceStepMetrics, AccumulateOnTheDeviceAndReadOnce) {
  StepMetrics m(at::Device(at::kCPU));
  const at::Tensor logits = at::tensor({2.0f, 1.0f, 0.0f, 3.0f}).reshape({2, 2});
  const at::Tensor labels = at::tensor({0, 0}, at::kLong);  // row 0 right, row 1 wrong
  double host_sum = 0;
  for (float loss : {0.25f, 1.5f, 0.7f}) {
    m.add(at::scalar_tensor(loss), logits, labels);
    host_sum += static_cast<double>(loss) * 2;  // what the trainer summed per step before
  }
  EXPECT_EQ(m.host_reads(), 0);
  EXPECT_EQ(m.pending_steps(), 3);
  const StepMetrics::Totals t = m.take();
  EXPECT_EQ(m.host_reads(), 1);
  EXPECT_EQ(t.loss_sum, host_sum);  // bit for bit
  EXPECT_EQ(t.correct, 3);
  EXPECT_EQ(t.seen, 6);
  EXPECT_EQ(t.steps, 3);
  EXPECT_EQ(m.take().steps, 0);  // reset; nothing to read
  EXPECT_EQ(m.host_reads(), 1);
  m.add(at::scalar_tensor(std::numeric_limits<float>::quiet_NaN()), logits, labels);
  m.add(at::scalar_tensor(0.5f), logits, labels);
  EXPECT_TRUE(std::isnan(m.take().loss_sum));  // a bad step is not lost in the sum
}

TEST(DevicePinning, OnlyForACudaTarget) {
  EXPECT_TRUE(pin_batches_for(at::Device(at::kCUDA, 0)));
  EXPECT_FALSE(pin_batches_for(at::Device(at::kCPU)));
  TrainConfig c;
  c.model = "lenet5";
  c.dataset = "synthetic";
  c.device = "auto";
  c.batch_size = 8;
  c.limit_train = 16;
  c.limit_test = 16;
  const bool cuda = resolve_device("auto").is_cuda();
  auto train = make_train_loader(c);
  auto test = make_test_loader(c);
  EXPECT_EQ(train->options().pin_memory, cuda);
  EXPECT_EQ(test->options().pin_memory, cuda);
  EXPECT_FALSE(make_pixel_loader(c, false)->options().pin_memory);  // the host model's input
  train->start_epoch(0);
  const auto batch = train->next();
  ASSERT_TRUE(batch.has_value());
  EXPECT_EQ(batch->images.is_pinned(), cuda);
  c.device = "cpu";
  EXPECT_FALSE(make_train_loader(c)->options().pin_memory);
}

TEST(DeviceCheckpoint, TensorsAndOptimiserStateLoadOnTheCpu) {
  const std::string dir = temp_dir("devckpt");
  TrainConfig c;
  c.model = "lenet5";
  c.device = "cpu";
  auto model = build_model(c, 10);
  auto opt = make_optimizer(c, *model);
  model->forward(at::randn({2, 1, 28, 28})).sum().backward();
  opt->step();  // momentum buffers exist
  save_checkpoint(dir + "/a.pt", c, *model, opt.get(), TrainState{});
  auto again = build_model(c, 10);
  auto opt2 = make_optimizer(c, *again);
  load_checkpoint(dir + "/a.pt", *again, opt2.get());
  size_t buffers = 0;
  for (auto& item : opt2->state()) {
    auto* s = dynamic_cast<torch::optim::SGDParamState*>(item.second.get());
    ASSERT_NE(s, nullptr);
    EXPECT_TRUE(s->momentum_buffer().device().is_cpu());
    ++buffers;
  }
  EXPECT_GT(buffers, 0u);
  EXPECT_EQ(module_device(*again), at::Device(at::kCPU));
  fs::remove_all(dir);
}

TEST(DeviceTraining, DeferredChecksStillStopADivergingRun) {
  if (!fs::exists(kFashion)) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  // The GPU's path on the CPU: host reads every 50 steps. A NaN weight makes
  // step 1's loss NaN; the read forced before --max-steps' checkpoint finds
  // it, names a parameter, and no checkpoint holds the diverged weights.
  const std::string dir = temp_dir("devnan");
  TrainConfig c;
  c.model = "lenet5";
  c.dataset = "fashion-mnist";
  c.wbits = c.abits = "4";
  c.alpha_init = 6;
  c.batch_size = 32;
  c.limit_train = 256;
  c.limit_test = 64;
  c.out = dir;
  c.quiet = true;
  c.threads = 2;
  c.device = "cpu";
  c.max_steps = 3;
  c.host_sync_every = 50;
  auto source = build_model(c, 10);
  std::map<std::string, at::Tensor> tensors = pactq::test::model_tensors(*source);
  tensors["conv2.weight"].view({-1})[7] = std::numeric_limits<float>::quiet_NaN();
  write_safetensors(dir + "/nan.safetensors", tensors);
  c.init_from = dir + "/nan.safetensors";
  try {
    run_training(c);
    FAIL() << "training went on with a NaN weight";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    // Two updates with NaN gradients spread it to every weight (and may reach
    // an alpha): the stop names the first non-finite parameter, or the alpha's
    // layer when the NaN reached one (the guard reports that first).
    const bool names_parameter =
        what.find("diverged") != std::string::npos &&
        what.find("steps 1..3") != std::string::npos &&
        what.find("first non-finite value in parameter") != std::string::npos;
    const bool names_alpha = what.find("alpha of layer '") != std::string::npos &&
                             what.find("became nan") != std::string::npos;
    EXPECT_TRUE(names_parameter || names_alpha) << what;
  }
  EXPECT_FALSE(fs::exists(dir + "/last.pt"));
  // config.json records the device; a healthy deferred run matches the
  // per-step one's numbers exactly.
  std::ifstream config_file(dir + "/config.json");
  EXPECT_EQ(nlohmann::json::parse(config_file).at("device"), "cpu");
  c.init_from.clear();
  c.max_steps = 5;
  c.out = dir + "/deferred";
  run_training(c);
  c.host_sync_every = 0;
  c.out = dir + "/each";
  run_training(c);
  const LoadedCheckpoint a = read_checkpoint_header(dir + "/deferred/last.pt");
  const LoadedCheckpoint b = read_checkpoint_header(dir + "/each/last.pt");
  EXPECT_EQ(a.state.epoch_loss_sum, b.state.epoch_loss_sum);
  EXPECT_EQ(a.state.epoch_correct, b.state.epoch_correct);
  EXPECT_EQ(a.state.epoch_seen, b.state.epoch_seen);
  EXPECT_EQ(a.state.epoch_seen, 5 * 32);
  fs::remove_all(dir);
}
