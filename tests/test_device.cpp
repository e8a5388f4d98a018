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
#include <vector>

#include "pactq/common/torch_compat.h"
#include "pactq/nn/alpha.h"
#include "pactq/nn/pact_relu.h"
#include "pactq/quant/pact.h"
#include "pactq/train/checkpoint.h"
#include "pactq/train/cuda_graph_step.h"
#include "pactq/train/data_setup.h"
#include "pactq/train/device.h"
#include "pactq/train/foreach_sgd.h"
#include "pactq/train/model_setup.h"
#include "pactq/train/optimizer.h"
#include "pactq/train/safetensors.h"
#include "pactq/train/step_metrics.h"
#include "pactq/train/trainer.h"
#include "test_env.h"
#include "train_test_util.h"

namespace fs = std::filesystem;
using namespace pactq::train;

namespace {

const std::string kExe = std::string(PACTQ_BINARY_DIR) + "/pactq";
using pactq::test::kFashion;

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
  if (!fs::exists(kFashion)) PACTQ_SKIP_MISSING("dataset-fashion-mnist not installed");
  // The GPU's path on the CPU: host reads every 50 steps. A NaN weight makes
  // step 1's loss NaN; the read forced before --max-steps' checkpoint finds
  // it, names a parameter, and no checkpoint holds the diverged weights.
  const std::string dir = temp_dir("devnan");
  TrainConfig c = pactq::test::small_lenet_config(dir);
  c.batch_size = 32;
  c.limit_train = 256;
  c.limit_test = 64;
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

TEST(DeviceAmp, OnlyOffAndBf16) {
  EXPECT_NO_THROW(check_amp_spec("off"));
  EXPECT_NO_THROW(check_amp_spec("bf16"));
  for (const char* bad : {"fp16", "on", "", "BF16"}) {
    try {
      check_amp_spec(bad);
      FAIL() << bad;
    } catch (const std::invalid_argument& e) {
      EXPECT_EQ(
          std::string(e.what()).rfind(std::string("--amp '") + bad + "': expected off or bf16", 0),
          0u)
          << e.what();
    }
  }
  TrainConfig c;
  c.amp = "fp16";
  EXPECT_THROW(c.validate(), std::invalid_argument);
  c.amp = "bf16";
  EXPECT_EQ(TrainConfig::from_json(c.to_json()).amp, "bf16");  // stored, so --resume keeps it
}

TEST(DeviceAmp, ScopeAutocastsConvolutionsAndRestoresTheState) {
  const at::Device cpu(at::kCPU);
  const at::Tensor x = at::randn({2, 3, 8, 8});
  const at::Tensor w = at::randn({4, 3, 3, 3});
  ASSERT_FALSE(pactq::compat::autocast_enabled(at::kCPU));
  {
    const pactq::compat::AutocastScope scope = autocast_for(cpu, "bf16");
    EXPECT_TRUE(pactq::compat::autocast_enabled(at::kCPU));
    EXPECT_EQ(at::conv2d(x, w).scalar_type(), at::kBFloat16);
    {
      const pactq::compat::AutocastScope off = autocast_for(cpu, "off");  // changes nothing
      EXPECT_EQ(at::conv2d(x, w).scalar_type(), at::kBFloat16);
    }
    // PACT receives bfloat16 and computes in float32: the result is float32
    // and equals PACT of the float32 value of its bfloat16 input.
    pactq::nn::PactReLUOptions options;
    options.bits = 4;
    options.alpha_init = 2.0;
    pactq::nn::PactReLU act(options);
    const at::Tensor h = at::conv2d(x, w);
    const at::Tensor y = act->forward(h);
    EXPECT_EQ(y.scalar_type(), at::kFloat);
    const pactq::compat::AutocastScope inner_off(at::kCPU, at::kBFloat16, false);
    EXPECT_TRUE(at::equal(y, pactq::quant::pact(h.to(at::kFloat), act->alpha, 4)));
  }
  EXPECT_FALSE(pactq::compat::autocast_enabled(at::kCPU));
  EXPECT_EQ(at::conv2d(x, w).scalar_type(), at::kFloat);
}

TEST(DeviceAmp, Bf16TrainingStepsLearn) {
  if (!fs::exists(kFashion)) PACTQ_SKIP_MISSING("dataset-fashion-mnist not installed");
  // --amp bf16 through the trainer on the CPU (CPU autocast is the same
  // mechanism as CUDA's): the loss falls and the checkpoint stays float32.
  const std::string dir = temp_dir("devamp");
  TrainConfig c = pactq::test::small_lenet_config(dir);
  c.limit_test = 256;
  c.device = "cpu";
  c.amp = "bf16";
  run_training(c);
  std::ifstream metrics(dir + "/metrics.jsonl");
  std::vector<nlohmann::json> rows;
  for (std::string line; std::getline(metrics, line);) rows.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_LT(rows[1].at("train_loss").get<double>(), rows[0].at("train_loss").get<double>());
  EXPECT_GT(rows[1].at("test_top1").get<double>(), 50.0);
  auto model = build_model(c, 10);
  load_checkpoint(dir + "/last.pt", *model, nullptr);
  for (const auto& p : model->named_parameters())
    EXPECT_EQ(p.value().scalar_type(), at::kFloat) << p.key();
  std::ifstream config_file(dir + "/config.json");
  EXPECT_EQ(nlohmann::json::parse(config_file).at("amp"), "bf16");
  fs::remove_all(dir);
}

TEST(DeviceChannelsLast, SameStepAsNchwAndActivationsStayNhwc) {
  // PACT keeps an NHWC activation NHWC (no copy back to NCHW) on both paths.
  const at::Tensor act = to_channels_last(at::randn({2, 16, 8, 8}));
  EXPECT_TRUE(act.is_contiguous(at::MemoryFormat::ChannelsLast));
  for (auto impl : {pactq::quant::PactImpl::kFused, pactq::quant::PactImpl::kComposite}) {
    const at::Tensor y = pactq::quant::pact(act, at::full({1}, 2.0f), 4, impl);
    EXPECT_TRUE(y.is_contiguous(at::MemoryFormat::ChannelsLast));
  }
  // A training step of ResNet20 in either layout: float, compared tightly,
  // and W4/A4. The float step runs in double: ReLU is an edge too, and in
  // float32 the other summation order moved a pre-activation across 0 often
  // enough (1 run in 5 on a Xeon with AMX) to change gradients by 0.3-2%.
  for (const char* bits : {"fp", "4"}) {
    const bool exact = std::string(bits) == "fp";
    const auto dtype = exact ? at::kDouble : at::kFloat;
    TrainConfig c;
    c.model = "resnet20";
    c.wbits = c.abits = bits;
    if (std::string(bits) == "fp") c.act_quant = "relu";
    c.alpha_init = 3;
    c.device = "cpu";
    auto nchw = build_model(c, 10);
    auto nhwc = build_model(c, 10);
    {
      at::NoGradGuard no_grad;
      auto src = nchw->named_parameters();
      for (auto& p : nhwc->named_parameters()) p.value().copy_(src[p.key()]);
    }
    nchw->to(dtype);
    nhwc->to(dtype);
    use_channels_last(*nhwc);
    size_t converted = 0;
    for (const auto& p : nhwc->named_parameters()) {
      if (p.value().dim() != 4) continue;
      EXPECT_TRUE(p.value().is_contiguous(at::MemoryFormat::ChannelsLast)) << p.key();
      ++converted;
    }
    EXPECT_EQ(converted, 19u);  // every conv: the first, 18 in the blocks
    at::manual_seed(5);
    const at::Tensor x = at::randn({4, 3, 32, 32}, at::TensorOptions().dtype(dtype));
    const at::Tensor labels = at::randint(0, 10, {4}, at::kLong);
    const at::Tensor want_logits = nchw->forward(x);
    at::cross_entropy_loss(want_logits, labels).backward();
    const at::Tensor logits = nhwc->forward(to_channels_last(x));
    at::cross_entropy_loss(logits, labels).backward();
    if (exact) {
      EXPECT_TRUE(at::allclose(logits, want_logits, 1e-9, 1e-9));
    }
    EXPECT_TRUE(at::isfinite(logits).all().item<bool>()) << bits;
    auto want = nchw->named_parameters();
    for (const auto& p : nhwc->named_parameters()) {
      if (!p.value().requires_grad()) continue;  // a fixed (relu) alpha
      const at::Tensor g = p.value().grad();
      ASSERT_TRUE(g.defined()) << p.key();
      EXPECT_TRUE(at::isfinite(g).all().item<bool>()) << p.key();
      if (exact) {
        EXPECT_TRUE(at::allclose(g, want[p.key()].grad(), 1e-8, 1e-10)) << p.key();
      }
    }
  }
}

TEST(DeviceForeachSgd, SameUpdateAsTheOptimisersOwnStep) {
  // Two param groups (weights with decay 5e-4, alphas with their own decay),
  // momentum 0.9: the multi-tensor step must give the optimiser's numbers.
  TrainConfig c;
  c.model = "lenet5";
  c.wbits = c.abits = "4";
  c.alpha_init = 3;
  c.weight_decay = 5e-4;
  c.alpha_decay = 1e-3;
  c.momentum = 0.9;
  c.lr = 0.05;
  auto a = build_model(c, 10);
  auto b = build_model(c, 10);
  {
    at::NoGradGuard no_grad;
    auto src = a->named_parameters();
    for (auto& p : b->named_parameters()) p.value().copy_(src[p.key()]);
  }
  auto opt_a = make_optimizer(c, *a);
  auto opt_b = make_optimizer(c, *b);
  at::manual_seed(9);
  const at::Tensor x = at::randn({8, 1, 28, 28});
  const at::Tensor y = at::randint(0, 10, {8}, at::kLong);
  auto backward = [&](pactq::models::QuantModel& m, torch::optim::Optimizer& o) {
    o.zero_grad();
    at::cross_entropy_loss(m.forward(x), y).backward();
  };
  backward(*b, *opt_b);
  EXPECT_FALSE(foreach_sgd_step(*opt_b)) << "no momentum buffers before the first step";
  for (int step = 0; step < 4; ++step) {
    backward(*a, *opt_a);
    opt_a->step();
    backward(*b, *opt_b);
    if (step == 0) {
      opt_b->step();  // creates the buffers, as the trainer's first step does
    } else {
      EXPECT_TRUE(foreach_sgd_step(*opt_b)) << step;
    }
    auto want = a->named_parameters();
    for (const auto& p : b->named_parameters()) {
      EXPECT_TRUE(at::allclose(p.value(), want[p.key()], 1e-6, 1e-7)) << p.key() << " " << step;
    }
  }
  // The parameters moved (the comparison above is not of untouched weights).
  auto fresh = build_model(c, 10);
  EXPECT_FALSE(
      at::equal(fresh->named_parameters()["conv1.weight"], b->named_parameters()["conv1.weight"]));
  c.optimizer = "adam";
  auto adam = make_optimizer(c, *b);
  EXPECT_FALSE(foreach_sgd_step(*adam));
}

TEST(DeviceCudaGraph, RefusedWithoutCudaInOneLine) {
  TrainConfig c;
  c.cuda_graph = true;
  c.device = "cpu";
  try {
    c.validate();
    FAIL() << "--cuda-graph with --device cpu was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("--cuda-graph: needs a CUDA device"), std::string::npos)
        << e.what();
  }
  TwoActs cpu_model;
  try {
    CudaGraphStep step(*cpu_model);
    FAIL() << "a CUDA graph step for a CPU model";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("--cuda-graph: needs a CUDA device"), std::string::npos)
        << e.what();
  }
  if (!cuda_graphs_built()) {
    const Output out = run_pactq("bench train --cuda-graph --device cpu --steps 1 --warmup 0");
    EXPECT_NE(out.status, 0);
    EXPECT_NE(out.text.find("--cuda-graph: needs a CUDA device"), std::string::npos) << out.text;
    EXPECT_EQ(std::count(out.text.begin(), out.text.end(), '\n'), 1) << out.text;
  }
}

// A replayed graph must read each new batch: a graph that kept the captured
// input would still make the loss fall on a repeated batch, so compare the
// replayed step's gradients with the eager step's, batch by batch, on batches
// the capture never saw (and check that they differ from batch to batch).
TEST(DeviceCudaGraph, ReplayedStepsMatchEagerGradientsOnNewBatches) {
  if (pactq::compat::cuda_device_count() == 0) PACTQ_SKIP_HARDWARE("no CUDA device");
  if (!cuda_graphs_built()) PACTQ_SKIP_HARDWARE("a build without the CUDA graph step");
  TrainConfig c;
  c.model = "lenet5";
  c.wbits = c.abits = "4";
  c.alpha_init = 3;
  const at::Device cuda(at::kCUDA, 0);
  at::manual_seed(21);
  auto graphed = build_model(c, 10);
  auto eager = build_model(c, 10);
  {
    at::NoGradGuard no_grad;
    auto src = graphed->named_parameters();
    for (auto& p : eager->named_parameters()) p.value().copy_(src[p.key()]);
  }
  graphed->to(cuda);
  eager->to(cuda);
  auto forward_of = [](pactq::models::QuantModel& m) {
    return [&m](const at::Tensor& x, const at::Tensor& y) {
      at::Tensor logits = m.forward(x);
      return std::make_pair(at::cross_entropy_loss(logits, y), logits);
    };
  };
  CudaGraphStep step(*graphed, /*eager_steps=*/2);
  at::Tensor previous;
  for (int b = 0; b < 7; ++b) {
    const at::Tensor x = at::randn({16, 1, 28, 28}, at::TensorOptions().device(cuda));
    const at::Tensor y =
        at::randint(0, 10, {16}, at::TensorOptions().dtype(at::kLong).device(cuda));
    const auto [loss, logits] = step.run(x, y, forward_of(*graphed));
    for (auto& p : eager->parameters()) p.mutable_grad() = at::Tensor();
    const auto [want_loss, want_logits] = forward_of(*eager)(x, y);
    want_loss.backward();
    EXPECT_NEAR(loss.item<double>(), want_loss.item<double>(), 1e-4) << "batch " << b;
    auto want = eager->named_parameters();
    for (const auto& p : graphed->named_parameters()) {
      if (!p.value().requires_grad()) continue;
      const at::Tensor g = p.value().grad(), w = want[p.key()].grad();
      ASSERT_TRUE(g.defined() && w.defined()) << p.key();
      EXPECT_TRUE(at::allclose(g, w, 1e-3, 1e-5))
          << "batch " << b << " " << p.key() << " differs by "
          << (g - w).abs().max().item<double>();
    }
    const at::Tensor g = graphed->named_parameters()["conv1.weight"].grad().clone();
    if (previous.defined()) {
      EXPECT_FALSE(at::equal(g, previous)) << "batch " << b;
    }
    previous = g;
  }
  EXPECT_TRUE(step.captured());
}
