// Exporter: every zoo model exports, loads and matches LibTorch; trained
// LeNet-5 and ResNet20 agree with the fake-quantized model on real data; the
// ResNet20 W4/A4 file is at most 1/6 of the fp32 weights; errors name files.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/nn/modules/batchnorm.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "pactq/export/exporter.h"
#include "pactq/models/registry.h"
#include "pactq/nn/pact_relu.h"
#include "pactq/nn/precision_policy.h"
#include "pactq/runtime/model.h"
#include "pactq/train/trainer.h"

namespace fs = std::filesystem;
using namespace pactq;

namespace {

std::string temp_dir(const std::string& tag) {
  std::string pattern = (fs::temp_directory_path() / ("pactq_" + tag + "_XXXXXX")).string();
  return mkdtemp(pattern.data());
}

const std::string kFashion = "/usr/share/datasets/fashion-mnist";
const std::string kCifar = std::string(PACTQ_SOURCE_DIR) + "/../shared/data/cifar-10-batches-bin";
const std::string kPretrained =
    std::string(PACTQ_SOURCE_DIR) + "/../shared/data/pretrained/resnet20-cifar10.safetensors";

// Realistic eval statistics without training: one train-mode pass with BN
// momentum 1 sets every running mean/var to that batch's, then alphas = 3.
void calibrate(models::QuantModel& model, const at::Tensor& x) {
  at::NoGradGuard no_grad;
  for (const auto& m : model.modules()) {
    if (auto bn = std::dynamic_pointer_cast<torch::nn::BatchNorm2dImpl>(m)) {
      bn->options.momentum(1.0);
      bn->weight.uniform_(0.5, 1.5);
      bn->bias.uniform_(-0.2, 0.2);
    }
    if (auto bn = std::dynamic_pointer_cast<torch::nn::BatchNorm1dImpl>(m)) {
      bn->options.momentum(1.0);
      bn->weight.uniform_(0.5, 1.5);
      bn->bias.uniform_(-0.2, 0.2);
    }
    if (auto act = std::dynamic_pointer_cast<nn::PactReLUImpl>(m)) act->alpha.fill_(3.0);
  }
  model.train();
  model.forward(x);
  model.eval();
}

struct ZooCase {
  std::string model;
  int input_size;  // 0: default
  int batch;
  nn::PrecisionPolicy policy;
  double max_rel_error;  // ||runtime - torch|| / ||torch|| on the logits
};

nn::PrecisionPolicy w4a4(nn::FirstLastRule fl = nn::FirstLastRule::kFullPrecision) {
  nn::PrecisionPolicy p;
  p.wbits = p.abits = 4;
  p.first_last = fl;
  return p;
}

nn::PrecisionPolicy fp_relu() {
  nn::PrecisionPolicy p;
  p.wbits = p.abits = 32;
  p.aquant = nn::ActivationKind::kRelu;
  return p;
}

void run_zoo_case(const ZooCase& c) {
  SCOPED_TRACE(c.model + " " + c.policy.summary());
  at::manual_seed(7);
  models::ModelOptions mo;
  mo.num_classes = 10;
  mo.input_size = c.input_size;
  auto model = models::create_model(c.model, mo);
  c.policy.apply(*model);
  const models::InputShape in = model->input_shape();
  calibrate(*model, at::rand({8, in.channels, in.height, in.width}) * 2 - 1);

  const std::vector<float> mean(in.channels, 0.45f), std(in.channels, 0.25f);
  const export_::ExportPlan plan = export_::ExportPlan::build(*model, mean, std);
  export_::ExportMetadata meta;
  meta.model = c.model;
  meta.precision = c.policy.summary();
  const std::vector<uint8_t> bytes = plan.serialize(meta);
  rt::Model runtime = rt::Model::load_from_memory(bytes.data(), bytes.size(), c.model);
  EXPECT_EQ(runtime.model_name(), c.model);
  EXPECT_EQ(runtime.classes(), 10);

  at::NoGradGuard no_grad;
  const at::Tensor pixels = at::rand({c.batch, in.channels, in.height, in.width});
  const at::Tensor x =
      (pixels - at::tensor(mean).reshape({1, -1, 1, 1})) / at::tensor(std).reshape({1, -1, 1, 1});
  const at::Tensor ref = model->forward(x);
  // The walker composes the model exactly as its forward does.
  const auto trace = plan.trace(x);
  EXPECT_TRUE(at::allclose(trace.back().second, ref, 1e-5, 1e-5))
      << "trace differs from forward by " << (trace.back().second - ref).abs().max().item<float>();

  const std::vector<float> out = runtime.run(pixels.contiguous().data_ptr<float>(), c.batch);
  const at::Tensor got = at::tensor(out).reshape(ref.sizes());
  const double rel = (got - ref).norm().item<double>() / ref.norm().item<double>();
  const int64_t agree = got.argmax(1).eq(ref.argmax(1)).sum().item<int64_t>();
  std::printf(
      "[export zoo] %-16s %-40s nodes %3zu  %8zu bytes (fp32 %9lld)  rel err %.2e  "
      "argmax %lld/%d\n",
      c.model.c_str(), c.policy.summary().c_str(), plan.steps().size(), bytes.size(),
      static_cast<long long>(plan.fp32_weight_bytes()), rel, static_cast<long long>(agree),
      c.batch);
  // Intermediate codes vs LibTorch's PACT outputs. Conv/BN results computed
  // two ways differ in the last float bits, so an element right at a rounding
  // boundary may flip a code; in deep random networks such a flip then
  // spreads. A folding or layout bug shows as many differences in the first
  // differing node; an isolated flip as a handful.
  int64_t compared = 0, matched = 0;
  std::string first_diff;
  double first_diff_fraction = 0;
  const at::Tensor px = pixels.contiguous();
  for (const auto& [name, t] : trace) {
    const rt::NodeOutput o = runtime.debug_output(name, px.data_ptr<float>(), c.batch);
    if (!o.codes) continue;
    const at::Tensor ref_codes =
        (t.reshape({-1}) * (static_cast<float>((1 << o.bits) - 1) / o.alpha)).round();
    const at::Tensor mine =
        at::tensor(std::vector<float>(o.code_values.begin(), o.code_values.end()));
    const int64_t m = mine.eq(ref_codes).sum().item<int64_t>();
    compared += mine.numel();
    matched += m;
    if (m != mine.numel() && first_diff.empty()) {
      first_diff = name + " (" + std::to_string(mine.numel() - m) + " of " +
                   std::to_string(mine.numel()) + ")";
      first_diff_fraction = static_cast<double>(mine.numel() - m) / mine.numel();
    }
  }
  std::printf("    codes match %.4f%% of %lld; first difference: %s\n",
              compared ? 100.0 * matched / compared : 100.0, static_cast<long long>(compared),
              first_diff.empty() ? "none" : first_diff.c_str());
  EXPECT_LT(first_diff_fraction, 1e-3) << first_diff;
  if (first_diff.empty()) {
    // Same codes everywhere: the logits differ by float rounding only.
    EXPECT_LT(rel, c.max_rel_error);
    EXPECT_EQ(agree, c.batch);
  }
}

train::TrainConfig lenet_config(const std::string& out, const std::string& bits) {
  train::TrainConfig c;
  c.model = "lenet5";
  c.dataset = "fashion-mnist";
  c.wbits = c.abits = bits;
  c.alpha_init = 6;
  c.epochs = 1;
  c.batch_size = 64;
  c.lr = 0.05;
  c.weight_decay = 5e-4;
  c.schedule = "cosine";
  c.limit_train = 4096;
  c.limit_test = 1000;
  c.out = out;
  c.quiet = true;
  c.threads = 2;
  return c;
}

export_::VerifyResult export_and_verify(const std::string& checkpoint, const std::string& pqm,
                                        const std::string& tag) {
  const export_::ExportReport rep = export_::export_checkpoint(checkpoint, pqm);
  EXPECT_EQ(rep.file_bytes, fs::file_size(pqm));
  const export_::VerifyResult v = export_::verify_checkpoint(checkpoint, pqm, 1000, {}, 200, 2);
  std::printf("[export %s] %s: %zu bytes (fp32 weights %lld)\n[export %s] %s\n", tag.c_str(),
              rep.precision.c_str(), rep.file_bytes, static_cast<long long>(rep.fp32_weight_bytes),
              tag.c_str(), v.summary().c_str());
  for (const auto& n : v.per_node) {
    std::printf("    %-20s codes %.3f%% (%lld)\n", n.node.c_str(),
                n.compared ? 100.0 * n.matched / n.compared : 100.0,
                static_cast<long long>(n.compared));
  }
  EXPECT_EQ(v.images, 1000);
  EXPECT_GE(v.agreement, 99.5);
  EXPECT_LE(std::abs(v.torch_top1 - v.runtime_top1), 0.2);
  EXPECT_GT(v.codes_compared, 0);
  EXPECT_GT(v.code_match, 95.0);
  return v;
}

}  // namespace

TEST(ExportZoo, EveryModelExportsAndMatchesLibTorchW4A4) {
  for (const std::string& name : models::model_names()) {
    const bool imagenet = name == "alexnet_bn" || name.rfind("preact_resnet", 0) == 0;
    const int size = name == "alexnet_bn" ? 63 : (imagenet ? 32 : 0);
    run_zoo_case({name, size, imagenet ? 1 : 2, w4a4(), 1e-4});
  }
}

TEST(ExportZoo, EightBitFirstLastFpActivationsAndFloatModels) {
  run_zoo_case({"resnet20", 0, 2, w4a4(nn::FirstLastRule::kEightBit), 1e-4});
  run_zoo_case({"lenet5", 0, 2, w4a4(nn::FirstLastRule::kEightBit), 1e-4});
  run_zoo_case({"preact_resnet18", 32, 1, w4a4(nn::FirstLastRule::kEightBit), 1e-4});
  nn::PrecisionPolicy wq_afp = w4a4();
  wq_afp.abits = 32;  // fp activations: PACT clip only, FLOAT values in the runtime
  run_zoo_case({"resnet20", 0, 2, wq_afp, 1e-3});
  nn::PrecisionPolicy sawb = w4a4();
  sawb.wquant = quant::WeightQuantKind::kSawb;
  sawb.wbits = sawb.abits = 2;
  run_zoo_case({"svhn7", 0, 2, sawb, 1e-4});
  // Float networks: only summation order differs.
  for (const char* name : {"lenet5", "resnet20", "svhn7"}) {
    run_zoo_case({name, 0, 2, fp_relu(), 1e-4});
  }
}

TEST(ExportTrained, Lenet5W4A4AndW2A2AgreeWithTheFakeQuantizedModel) {
  if (!fs::exists(kFashion)) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  const std::string dir = temp_dir("export_lenet");
  for (const std::string bits : {"4", "2"}) {
    const std::string out = dir + "/w" + bits;
    const train::TrainSummary s = train::run_training(lenet_config(out, bits));
    EXPECT_GT(s.final_test_top1, 40.0);
    const export_::VerifyResult v =
        export_and_verify(out + "/last.pt", out + "/lenet5.pqm", "lenet5 W" + bits + "A" + bits);
    EXPECT_GT(v.runtime_top1, 40.0);
  }
  fs::remove_all(dir);
}

TEST(ExportTrained, Resnet20W4A4AndW2A2FineTunesAgreeAndAreSmall) {
  if (!fs::exists(kPretrained) || !fs::exists(kCifar)) GTEST_SKIP() << "shared data not present";
  const std::string dir = temp_dir("export_r20");
  for (const std::string bits : {"4", "2"}) {
    train::TrainConfig c;
    c.model = "resnet20";
    c.dataset = "cifar10";
    c.data_dir = kCifar;
    c.wbits = c.abits = bits;
    c.first_last = "fp";
    c.init_from = kPretrained;
    c.alpha_init = 6;
    c.lr = 0.01;
    c.schedule = "constant";
    c.epochs = 1;
    c.batch_size = 64;
    c.max_steps = 40;
    c.limit_train = 64 * 40;
    c.limit_test = 1000;
    c.out = dir + "/w" + bits;
    c.quiet = true;
    c.threads = 2;
    const train::TrainSummary s = train::run_training(c);
    const std::string pqm = c.out + "/resnet20.pqm";
    const export_::VerifyResult v =
        export_and_verify(c.out + "/last.pt", pqm, "resnet20 W" + bits + "A" + bits);
    rt::Model m = rt::Model::load(pqm);
    const int64_t fp32 = std::stoll(m.metadata("fp32_weight_bytes"));
    const auto size = static_cast<int64_t>(fs::file_size(pqm));
    std::printf("[export resnet20 W%sA%s] .pqm %lld bytes, fp32 weights %lld bytes (1/%.2f)\n",
                bits.c_str(), bits.c_str(), static_cast<long long>(size),
                static_cast<long long>(fp32), static_cast<double>(fp32) / size);
    EXPECT_EQ(fp32, 4 * 269722);  // conv + linear + BN affine parameters
    EXPECT_EQ(m.model_name(), "resnet20");
    EXPECT_EQ(m.class_names().size(), 10u);
    EXPECT_NE(m.metadata("precision").find("W" + bits + "/A" + bits), std::string::npos);
    if (bits == "4") {
      EXPECT_GT(s.final_test_top1, 60.0);
      EXPECT_GT(v.runtime_top1, 60.0);
      EXPECT_LE(size * 6, fp32);
      // The CLI on the same files.
      const std::string exe = std::string(PACTQ_BINARY_DIR) + "/pactq";
      const std::string log = c.out + "/cli.txt";
      const std::string cmd = exe + " export " + c.out + "/last.pt -o " + c.out +
                              "/cli.pqm --verify 100 --verify-codes 20 > " + log + " 2>&1 && " +
                              exe + " inspect " + c.out + "/cli.pqm >> " + log + " 2>&1 && " + exe +
                              " run " + c.out + "/cli.pqm --dataset cifar10 --data-dir " + kCifar +
                              " --limit 200 --batch-size 50 >> " + log + " 2>&1";
      EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
      std::ifstream f(log);
      const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      std::printf("%s", text.c_str());
      EXPECT_NE(text.find("prediction agreement"), std::string::npos);
      EXPECT_NE(text.find("layer3.2.conv2"), std::string::npos);
      EXPECT_NE(text.find("images/s"), std::string::npos);
    }
  }
  fs::remove_all(dir);
}

TEST(ExportErrors, BadCheckpointPathIsNamed) {
  const std::string bad = "/nonexistent/dir/model-does-not-exist.pt";
  try {
    export_::export_checkpoint(bad, "/tmp/never.pqm");
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
  }
  const std::string dir = temp_dir("export_bad");
  const std::string garbage = dir + "/garbage.pt";
  std::FILE* f = std::fopen(garbage.c_str(), "wb");
  std::fputs("not a checkpoint", f);
  std::fclose(f);
  try {
    export_::export_checkpoint(garbage, dir + "/x.pqm");
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find(garbage), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir + "/x.pqm"));
  fs::remove_all(dir);
}
