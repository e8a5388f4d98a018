// Training end to end: schedules, safetensors, checkpoints, a short real run,
// kill-and-resume, and the pretrained ResNet20 evaluation.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <thread>

#include "pactq/data/registry.h"
#include "pactq/export/deployed_eval.h"
#include "pactq/nn/alpha.h"
#include "pactq/nn/batch_norm.h"
#include "pactq/train/checkpoint.h"
#include "pactq/train/data_setup.h"
#include "pactq/train/distillation.h"
#include "pactq/train/divergence.h"
#include "pactq/train/evaluate.h"
#include "pactq/train/model_setup.h"
#include "pactq/train/optimizer.h"
#include "pactq/train/safetensors.h"
#include "pactq/train/schedule.h"
#include "pactq/train/trainer.h"
#include "test_env.h"
#include "train_test_util.h"

namespace fs = std::filesystem;
using namespace pactq::train;

namespace {

std::string temp_dir(const std::string& tag) {
  std::string pattern = (fs::temp_directory_path() / ("pactq_" + tag + "_XXXXXX")).string();
  return mkdtemp(pattern.data());
}

using pactq::test::kCifar;
using pactq::test::kFashion;
using pactq::test::kPretrained;

using pactq::test::model_tensors;
using pactq::test::small_lenet_config;

std::map<std::string, at::Tensor> checkpoint_tensors(const std::string& path) {
  const LoadedCheckpoint h = read_checkpoint_header(path);
  auto model = build_model(h.config, h.config.num_classes);
  load_checkpoint(path, *model, nullptr);
  return model_tensors(*model);
}

}  // namespace

TEST(TrainSchedule, MultistepCosineStepWarmup) {
  LrSchedule m("multistep:60,120", 0.1, 200);
  EXPECT_DOUBLE_EQ(m.at(0), 0.1);
  EXPECT_NEAR(m.at(60), 0.01, 1e-12);
  EXPECT_NEAR(m.at(150), 0.001, 1e-12);
  LrSchedule f("multistep:56,64@0.2", 1e-4, 100);
  EXPECT_NEAR(f.at(57), 2e-5, 1e-12);
  LrSchedule s("step:50@0.5", 1e-3, 200);
  EXPECT_NEAR(s.at(120), 2.5e-4, 1e-12);
  LrSchedule c("cosine", 1.0, 10);
  EXPECT_NEAR(c.at(5), 0.5, 1e-12);
  EXPECT_NEAR(c.at(10), 0.0, 1e-12);
  LrSchedule w("constant", 1.0, 10, 2);
  EXPECT_NEAR(w.at(1), 0.5, 1e-6);
  EXPECT_THROW(LrSchedule("multistep", 0.1, 10), std::invalid_argument);
  EXPECT_THROW(LrSchedule("exp:3", 0.1, 10), std::invalid_argument);
}

TEST(TrainSafetensors, RoundTripAndErrorsNameTheFile) {
  const std::string dir = temp_dir("st");
  const std::string path = dir + "/w.safetensors";
  std::map<std::string, at::Tensor> t = {{"a.weight", at::randn({3, 4})}, {"b", at::arange(5)}};
  write_safetensors(path, t, {{"k", "v"}});
  const SafetensorsFile f = read_safetensors(path);
  EXPECT_TRUE(at::equal(f.tensors.at("a.weight"), t["a.weight"]));
  EXPECT_TRUE(at::equal(f.tensors.at("b"), t["b"]));
  EXPECT_EQ(f.metadata.at("k"), "v");
  // truncate: the error names the file
  fs::resize_file(path, fs::file_size(path) - 7);
  try {
    read_safetensors(path);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_safetensors(dir + "/missing.safetensors"), std::runtime_error);
  fs::remove_all(dir);
}

TEST(TrainInit, ShapeMismatchIsAnErrorAndNamesAreReported) {
  const std::string dir = temp_dir("init");
  TrainConfig c;
  c.model = "resnet20";
  c.wbits = c.abits = "fp";
  auto model = build_model(c, 10);
  write_safetensors(dir + "/ok.safetensors",
                    {{"conv1.weight", at::zeros({16, 3, 3, 3})}, {"extra", at::zeros({1})}});
  const InitReport r = load_float_weights(*model, dir + "/ok.safetensors");
  EXPECT_EQ(r.loaded.size(), 1u);
  EXPECT_EQ(r.unexpected, std::vector<std::string>{"extra"});
  EXPECT_FALSE(r.missing.empty());
  EXPECT_TRUE(model->named_parameters()["conv1.weight"].eq(0).all().item<bool>());
  // An alpha that would divide by zero (or flip the clip) is refused at load.
  c.wbits = c.abits = "4";
  auto quantized = build_model(c, 10);
  write_safetensors(dir + "/alpha.safetensors", {{"layer1.0.act1.alpha", at::zeros({1})}});
  try {
    load_float_weights(*quantized, dir + "/alpha.safetensors");
    FAIL() << "alpha 0 was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("layer1.0.act1"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("alpha.safetensors"), std::string::npos) << e.what();
  }
  write_safetensors(dir + "/bad.safetensors", {{"conv1.weight", at::zeros({16, 3, 5, 5})}});
  try {
    load_float_weights(*model, dir + "/bad.safetensors");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("conv1.weight"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("bad.safetensors"), std::string::npos);
  }
  fs::remove_all(dir);
}

TEST(TrainOptimizer, AlphasHaveTheirOwnDecayDefaultingToTheWeightDecay) {
  TrainConfig c;
  c.model = "lenet5";
  c.lr = 0.1;
  c.momentum = 0;  // one step is then exactly p -= lr * (grad + decay * p)
  c.weight_decay = 5e-4;
  // The paper's lambda_alpha is the experiment's weight decay: the default.
  EXPECT_DOUBLE_EQ(c.resolved_alpha_decay(), 5e-4);
  EXPECT_DOUBLE_EQ(TrainConfig::from_json(c.to_json()).resolved_alpha_decay(), 5e-4);
  for (const double alpha_decay : {-1.0, 0.02}) {  // -1: left at the default
    if (alpha_decay >= 0) c.alpha_decay = alpha_decay;
    const double want_alpha_decay = alpha_decay >= 0 ? alpha_decay : c.weight_decay;
    auto model = build_model(c, 10);
    auto optimizer = make_optimizer(c, *model);
    const auto alphas = pactq::nn::learned_alphas(*model);
    ASSERT_EQ(alphas.size(), 4u);
    ASSERT_EQ(optimizer->param_groups().size(), 2u);
    const auto& weights = optimizer->param_groups()[0].params();
    const auto& alpha_group = optimizer->param_groups()[1].params();
    ASSERT_EQ(alpha_group.size(), alphas.size());
    for (size_t i = 0; i < alphas.size(); ++i)
      EXPECT_TRUE(alpha_group[i].is_same(alphas[i].second));
    for (const auto& w : weights) {
      for (const auto& a : alphas) EXPECT_FALSE(w.is_same(a.second)) << a.first;
    }
    size_t trainable = 0;
    for (const auto& p : model->parameters()) trainable += p.requires_grad();
    EXPECT_EQ(weights.size() + alpha_group.size(), trainable);
    // Behaviour, not just options: with zero gradients one step applies only
    // the decays, each group its own.
    std::vector<at::Tensor> before;
    for (const auto& p : model->parameters()) {
      before.push_back(p.detach().clone());
      p.mutable_grad() = at::zeros_like(p);
    }
    optimizer->step();
    const auto params = model->parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      if (!params[i].requires_grad()) continue;
      bool is_alpha = false;
      for (const auto& a : alphas) is_alpha = is_alpha || a.second.is_same(params[i]);
      const double decay = is_alpha ? want_alpha_decay : c.weight_decay;
      EXPECT_TRUE(at::allclose(params[i].detach(), before[i] * (1 - c.lr * decay), 1e-6, 1e-9))
          << (is_alpha ? "alpha" : "weight") << " " << i;
    }
  }
}

TEST(TrainEndToEnd, TheAlphaGuardRunsAfterEveryStep) {
  if (!fs::exists(kFashion)) PACTQ_SKIP_MISSING("dataset-fashion-mnist not installed");
  // An alpha decay this strong drives every alpha negative in each step
  // (alpha * (1 - lr * decay) < 0): only the guard's floor keeps it positive
  // for the next step's forward.
  const std::string dir = temp_dir("guard");
  TrainConfig c = small_lenet_config(dir);
  c.alpha_decay = 1e6;
  c.limit_train = 512;
  c.max_steps = 4;
  c.momentum = 0;
  run_training(c);
  auto model = build_model(c, 10);
  load_checkpoint(dir + "/last.pt", *model, nullptr);
  const auto alphas = pactq::nn::learned_alphas(*model);
  ASSERT_FALSE(alphas.empty());
  for (const auto& [name, alpha] : alphas) EXPECT_FLOAT_EQ(alpha.item<float>(), 1e-3f) << name;
  fs::remove_all(dir);
}

TEST(TrainEndToEnd, ANanStopsTrainingNamingWhereItIs) {
  if (!fs::exists(kFashion)) PACTQ_SKIP_MISSING("dataset-fashion-mnist not installed");
  const std::string dir = temp_dir("nan");
  TrainConfig c = small_lenet_config(dir);
  c.limit_train = 512;
  c.max_steps = 3;
  // Float weights with one NaN in conv2: the fused kernels once turned it
  // into zeros (the loss stayed finite while the layer was dead).
  auto source = build_model(c, 10);
  std::map<std::string, at::Tensor> tensors = model_tensors(*source);
  tensors["conv2.weight"].view({-1})[7] = std::numeric_limits<float>::quiet_NaN();
  write_safetensors(dir + "/nan.safetensors", tensors);
  c.init_from = dir + "/nan.safetensors";
  try {
    run_training(c);
    FAIL() << "training went on with a NaN weight";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("diverged"), std::string::npos) << what;
    EXPECT_NE(what.find("step 1"), std::string::npos) << what;
    EXPECT_NE(what.find("conv2.weight"), std::string::npos) << what;
  }
  // A NaN that arises in the activations is named by the first layer it reaches.
  auto model = build_model(c, 10);
  model->train();
  at::Tensor images = at::randn({4, 1, 28, 28});
  EXPECT_EQ(locate_non_finite(*model, images), "");
  images[2][0][5][5] = std::numeric_limits<float>::infinity();
  images[2][0][5][6] = -std::numeric_limits<float>::infinity();
  // The probe moves no BatchNorm statistics, enters no sync-BN collective (it
  // runs on one rank only) and leaves the model in training mode.
  const auto before = model_tensors(*model);
  int collectives = 0;
  pactq::nn::StatsReducer count = [&](at::Tensor&) { ++collectives; };
  {
    pactq::nn::SyncBatchNormScope scope(&count);
    EXPECT_EQ(locate_non_finite(*model, images), "the input of activation 'act1'");
  }
  EXPECT_EQ(collectives, 0);
  EXPECT_TRUE(model->is_training());
  for (const auto& [name, value] : model_tensors(*model)) {
    EXPECT_TRUE(at::equal(value, before.at(name))) << name << " moved";
  }
  fs::remove_all(dir);
}

TEST(TrainDistillation, LossIsTheWeightedSumOfLabelsAndTemperedTeacher) {
  at::manual_seed(31);
  TrainConfig c;
  c.model = "lenet5";
  const std::string dir = temp_dir("kd");
  auto fp_config = c;
  fp_config.wbits = fp_config.abits = "fp";
  fp_config.act_quant = "relu";
  auto source = build_model(fp_config, 10);
  std::map<std::string, at::Tensor> tensors = model_tensors(*source);
  write_safetensors(dir + "/teacher.safetensors", tensors);
  c.distill_from = dir + "/teacher.safetensors";
  c.distill_temperature = 3;
  c.distill_weight = 0.25;
  auto teacher = make_teacher(c, 10);
  ASSERT_TRUE(teacher);
  EXPECT_FALSE(teacher->is_training());
  for (const auto& p : teacher->parameters()) EXPECT_FALSE(p.requires_grad());
  const at::Tensor images = at::randn({6, 1, 28, 28});
  const at::Tensor labels = at::randint(0, 10, {6}, at::kLong);
  at::Tensor logits = (at::randn({6, 10}) * 2).set_requires_grad(true);
  const at::Tensor hard = at::cross_entropy_loss(logits, labels);
  const at::Tensor loss = distillation_loss(c, hard, logits, *teacher, images);
  // Written out: KL(p_t || p_s) = sum p_t (log p_t - log p_s), batch mean, x T^2.
  at::Tensor t_logits;
  {
    at::NoGradGuard no_grad;
    t_logits = teacher->forward(images);
  }
  const at::Tensor pt = at::softmax(t_logits / 3, 1);
  const at::Tensor kl =
      (pt * (at::log(pt) - at::log_softmax(logits.detach() / 3, 1))).sum(1).mean() * 9;
  EXPECT_NEAR(loss.item<double>(), 0.75 * hard.item<double>() + 0.25 * kl.item<double>(), 1e-5);
  // The student learns from it; a student equal to the teacher has no soft loss.
  loss.backward();
  EXPECT_GT(logits.grad().abs().sum().item<double>(), 0.0);
  c.distill_weight = 1.0;
  EXPECT_NEAR(distillation_loss(c, hard, t_logits, *teacher, images).item<double>(), 0.0, 1e-5);
  c.distill_from.clear();
  EXPECT_FALSE(make_teacher(c, 10));
  fs::remove_all(dir);
}

TEST(TrainEndToEnd, ValidationSplitAndDeployedAccuracyChooseTheBestCheckpoint) {
  if (!fs::exists(kFashion)) PACTQ_SKIP_MISSING("dataset-fashion-mnist not installed");
  const std::string dir = temp_dir("valdeploy");
  TrainConfig c = small_lenet_config(dir);
  c.val_split = 500;
  c.eval_deployed = true;
  c.alpha_init = 10;
  c.alpha_calibration = "mse";
  c.limit_train = 1024;
  c.limit_test = 500;
  EXPECT_THROW(run_training(c), std::invalid_argument) << "no deployed evaluator given";
  const TrainSummary s = run_training(c, pactq::export_::evaluate_deployed);
  ASSERT_EQ(s.epochs_done, 2);
  EXPECT_GE(s.final_test_top1_deployed, 0);
  EXPECT_GE(s.final_val_top1, 0);
  std::ifstream lines(dir + "/metrics.jsonl");
  std::string line;
  double best_val_deployed = -1;
  int rows = 0;
  while (std::getline(lines, line)) {
    const auto row = nlohmann::json::parse(line);
    for (const char* key : {"test_top1", "test_top1_deployed", "val_top1", "val_top1_deployed"}) {
      EXPECT_TRUE(row.contains(key)) << key;
    }
    // The deployed model agrees with the fake-quantized one within a point here.
    EXPECT_NEAR(row["test_top1_deployed"].get<double>(), row["test_top1"].get<double>(), 1.0);
    best_val_deployed = std::max(best_val_deployed, row["val_top1_deployed"].get<double>());
    // Calibration put the alphas far below the init of 10.
    for (const auto& item : row.items()) {
      if (item.key().rfind("alpha:", 0) == 0) {
        EXPECT_LT(item.value().get<double>(), 8.0);
      }
    }
    ++rows;
  }
  EXPECT_EQ(rows, 2);
  EXPECT_DOUBLE_EQ(s.best_top1, best_val_deployed) << "best.pt is chosen by val, deployed";
  // The held-out images are not trained on: 60000 - 500, limited to 1024.
  auto check = c;
  auto train_loader = make_train_loader(check);
  auto val_loader = make_val_loader(check);
  EXPECT_EQ(val_loader->num_samples(), 500);
  const auto val_order = val_loader->epoch_order(0);
  const std::set<int64_t> held(val_order.begin(), val_order.end());
  for (const int64_t i : train_loader->epoch_order(0)) ASSERT_EQ(held.count(i), 0u) << i;
  fs::remove_all(dir);
}

TEST(TrainEndToEnd, TwoEpochLenetBeatsChanceAndWritesItsFiles) {
  if (!fs::exists(kFashion)) PACTQ_SKIP_MISSING("dataset-fashion-mnist not installed");
  const std::string dir = temp_dir("lenet");
  const TrainSummary s = run_training(small_lenet_config(dir));
  EXPECT_EQ(s.epochs_done, 2);
  EXPECT_GT(s.final_test_top1, 50.0) << "chance is 10%";
  for (const char* f : {"metrics.csv", "metrics.jsonl", "config.json", "last.pt", "best.pt"}) {
    EXPECT_TRUE(fs::exists(dir + "/" + f)) << f;
  }
  std::ifstream csv(dir + "/metrics.csv");
  std::string header, row1, row2, extra;
  std::getline(csv, header);
  std::getline(csv, row1);
  std::getline(csv, row2);
  EXPECT_NE(header.find("test_top5"), std::string::npos);
  EXPECT_NE(header.find("alpha:"), std::string::npos);
  EXPECT_FALSE(row2.empty());
  EXPECT_FALSE(std::getline(csv, extra) && !extra.empty());
  // the checkpoint evaluates to the same accuracy it was logged with
  const LoadedCheckpoint h = read_checkpoint_header(dir + "/last.pt");
  EXPECT_EQ(h.state.epoch, 2);
  auto model = build_model(h.config, h.config.num_classes);
  load_checkpoint(dir + "/last.pt", *model, nullptr);
  TrainConfig ec = h.config;
  auto loader = make_test_loader(ec);
  const EvalResult r = evaluate(
      *model, [&](const at::Tensor& x) { return model->forward(x); }, *loader);
  EXPECT_NEAR(r.top1, s.final_test_top1, 1e-9);
  fs::remove_all(dir);
}

TEST(TrainEndToEnd, KillAndResumeGivesTheSameWeights) {
  if (!fs::exists(kFashion)) PACTQ_SKIP_MISSING("dataset-fashion-mnist not installed");
  const std::string base = temp_dir("resume");
  // Uninterrupted reference, in process.
  TrainConfig ref = small_lenet_config(base + "/ref");
  ref.checkpoint_every = 4;
  run_training(ref);

  // The same run as a separate process, killed with SIGKILL once it has
  // written a mid-run checkpoint, then resumed.
  const std::string exe = std::string(PACTQ_BINARY_DIR) + "/pactq";
  ASSERT_TRUE(fs::exists(exe));
  const std::string out = base + "/killed";
  std::vector<std::string> argv_s = {exe,
                                     "train",
                                     "--model",
                                     "lenet5",
                                     "--dataset",
                                     "fashion-mnist",
                                     "--wbits",
                                     "4",
                                     "--abits",
                                     "4",
                                     "--alpha-init",
                                     "6",
                                     "--epochs",
                                     "2",
                                     "--batch-size",
                                     "64",
                                     "--lr",
                                     "0.05",
                                     "--weight-decay",
                                     "5e-4",
                                     "--schedule",
                                     "cosine",
                                     "--limit-train",
                                     "2048",
                                     "--limit-test",
                                     "1000",
                                     "--threads",
                                     "2",
                                     "--checkpoint-every",
                                     "4",
                                     "--quiet",
                                     "--out",
                                     out};
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    freopen("/dev/null", "w", stdout);
    execv(exe.c_str(), argv.data());
    _exit(127);
  }
  // Kill while epoch 2 is in progress (after at least one mid-epoch checkpoint).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  bool killed = false;
  while (std::chrono::steady_clock::now() < deadline) {
    if (fs::exists(out + "/last.pt")) {
      try {
        const LoadedCheckpoint h = read_checkpoint_header(out + "/last.pt");
        if (h.state.epoch == 1 && h.state.batch_in_epoch >= 4) {
          kill(pid, SIGKILL);
          killed = true;
          break;
        }
      } catch (const std::exception&) {
        // being replaced right now: the rename is atomic, so just retry
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(killed) << "the run finished before it could be killed";
  ASSERT_TRUE(WIFSIGNALED(status));

  TrainConfig resume = small_lenet_config(out);
  resume.checkpoint_every = 4;
  resume.resume = true;
  const TrainSummary s = run_training(resume);
  EXPECT_EQ(s.epochs_done, 2);
  const auto a = checkpoint_tensors(base + "/ref/last.pt");
  const auto b = checkpoint_tensors(out + "/last.pt");
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    EXPECT_TRUE(at::equal(t, b.at(name))) << name << " differs after kill + resume";
  }
  fs::remove_all(base);
}

TEST(TrainEndToEnd, PretrainedResnet20ScoresItsPublishedAccuracy) {
  if (!fs::exists(kPretrained) || !fs::exists(kCifar))
    PACTQ_SKIP_MISSING("shared data not present");
  TrainConfig c;
  c.model = "resnet20";
  c.dataset = "cifar10";
  c.data_dir = kCifar;
  c.wbits = c.abits = "fp";
  c.act_quant = "relu";
  c.init_from = kPretrained;
  c.batch_size = 500;
  c.threads = 2;
  auto loader = make_test_loader(c);  // takes the normalisation from the file's metadata
  EXPECT_NEAR(c.mean[0], 0.485f, 1e-6);
  auto model = build_model(c, 10);
  const InitReport report = load_float_weights(*model, kPretrained);
  EXPECT_TRUE(report.unexpected.empty());
  const EvalResult r = evaluate(
      *model, [&](const at::Tensor& x) { return model->forward(x); }, *loader);
  EXPECT_EQ(r.count, 10000);
  EXPECT_EQ(r.correct, 9173);
}
