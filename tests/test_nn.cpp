// nn modules: PactReLU, QConv2d, QLinear, precision policy, alpha helpers.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>

#include <limits>

#include "pactq/nn/activation_observer.h"
#include "pactq/nn/alpha.h"
#include "pactq/nn/alpha_calibration.h"
#include "pactq/nn/clipping_report.h"
#include "pactq/nn/pact_relu.h"
#include "pactq/nn/precision_policy.h"
#include "pactq/nn/qconv2d.h"
#include "pactq/nn/qlinear.h"
#include "pactq/quant/weight_quant.h"

using namespace pactq::nn;

namespace {

// conv1 -> act1 -> block.conv -> block.act -> fc : enough to see first/last.
struct TinyNetImpl : torch::nn::Module {
  TinyNetImpl() {
    conv1 = register_module("conv1", QConv2d(QConv2dOptions{3, 8, 3, 1, 1}));
    act1 = register_module("act1", PactReLU());
    block = register_module("block", std::make_shared<torch::nn::Module>());
    block_conv = block->register_module("conv", QConv2d(QConv2dOptions{8, 8, 3, 1, 1}));
    block_act = block->register_module("act", PactReLU());
    fc = register_module("fc", QLinear(QLinearOptions{8, 10}));
  }
  at::Tensor forward(const at::Tensor& x) {
    at::Tensor y = act1(conv1(x));
    y = block_act(block_conv(y));
    return fc(y.mean({2, 3}));
  }
  QConv2d conv1{nullptr}, block_conv{nullptr};
  PactReLU act1{nullptr}, block_act{nullptr};
  std::shared_ptr<torch::nn::Module> block;
  QLinear fc{nullptr};
};
TORCH_MODULE(TinyNet);

}  // namespace

TEST(NnPolicy, FirstAndLastLayersFollowTheRule) {
  TinyNet net;
  PrecisionPolicy policy;  // W4/A4, first/last fp
  const auto decisions = policy.apply(*net);
  EXPECT_EQ(net->conv1->quantization().bits(), 32);
  EXPECT_EQ(net->block_conv->quantization().bits(), 4);
  EXPECT_EQ(net->fc->quantization().bits(), 32);
  EXPECT_EQ(net->act1->bits(), 4);
  EXPECT_EQ(net->block_act->bits(), 4);
  ASSERT_EQ(decisions.size(), 5u);
  EXPECT_EQ(decisions[0].name, "conv1");

  policy.first_last = FirstLastRule::kEightBit;
  policy.apply(*net);
  EXPECT_EQ(net->conv1->quantization().bits(), 8);
  EXPECT_EQ(net->fc->quantization().bits(), 8);

  policy.first_last = FirstLastRule::kSame;
  policy.apply(*net);
  EXPECT_EQ(net->conv1->quantization().bits(), 4);
  EXPECT_EQ(net->fc->quantization().bits(), 4);
}

TEST(NnPolicy, OverridesByPattern) {
  TinyNet net;
  PrecisionPolicy policy;
  policy.overrides.push_back(PrecisionOverride::parse("block.*=2"));
  policy.overrides.push_back(PrecisionOverride::parse("act1=a8"));
  policy.overrides.push_back(PrecisionOverride::parse("fc=w8"));
  policy.apply(*net);
  EXPECT_EQ(net->block_conv->quantization().bits(), 2);
  EXPECT_EQ(net->block_act->bits(), 2);
  EXPECT_EQ(net->act1->bits(), 8);
  EXPECT_EQ(net->fc->quantization().bits(), 8);
  EXPECT_EQ(net->conv1->quantization().bits(), 32);

  const auto o = PrecisionOverride::parse("layer?.*=w3a5");
  EXPECT_EQ(*o.wbits, 3);
  EXPECT_EQ(*o.abits, 5);
  EXPECT_TRUE(glob_match("layer?.*", "layer3.0.conv1"));
  EXPECT_FALSE(glob_match("layer?.*", "linear"));
  EXPECT_TRUE(glob_match("*conv*", "layer1.2.conv2"));
}

TEST(NnPolicy, ErrorsNameTheProblem) {
  TinyNet net;
  PrecisionPolicy policy;
  policy.overrides.push_back(PrecisionOverride::parse("layer9.*=2"));
  try {
    policy.apply(*net);
    FAIL() << "an override matching nothing must be an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("layer9.*"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("block.conv"), std::string::npos);  // lists the layers
  }
  EXPECT_THROW(PrecisionOverride::parse("layer3"), std::invalid_argument);
  EXPECT_THROW(PrecisionOverride::parse("layer3=12"), std::invalid_argument);
  EXPECT_THROW(PrecisionOverride::parse("layer3=x4"), std::invalid_argument);
  PrecisionPolicy bad;
  bad.wbits = 0;
  EXPECT_THROW(bad.apply(*net), std::invalid_argument);
  PrecisionPolicy relu;
  relu.aquant = ActivationKind::kRelu;
  EXPECT_THROW(relu.apply(*net), std::invalid_argument);  // relu at 4 bits
  relu.abits = 32;
  EXPECT_NO_THROW(relu.apply(*net));
  PrecisionPolicy sawb1;
  sawb1.wquant = pactq::quant::WeightQuantKind::kSawb;
  sawb1.wbits = 1;
  EXPECT_THROW(sawb1.apply(*net), std::invalid_argument);
  EXPECT_THROW(parse_first_last("4"), std::invalid_argument);
}

TEST(NnLayers, QConvUsesQuantizedWeightAndCachesInEval) {
  QConv2d conv(QConv2dOptions{4, 6, 3, 2, 1, 1, true, 4});
  const at::Tensor x = at::randn({2, 4, 9, 9});
  const at::Tensor expected = at::conv2d(
      x, pactq::quant::quantize_weight(conv->weight, 4, pactq::quant::WeightQuantKind::kDoReFa),
      conv->bias, {2, 2}, {1, 1});
  EXPECT_TRUE(at::allclose(conv(x), expected, 1e-5, 1e-5));
  EXPECT_EQ(conv(x).sizes(), at::IntArrayRef({2, 6, 5, 5}));

  conv->eval();
  at::NoGradGuard no_grad;
  const at::Tensor w1 = conv->quantized_weight();
  const at::Tensor w2 = conv->quantized_weight();
  EXPECT_EQ(w1.data_ptr(), w2.data_ptr()) << "eval reuses the cached quantized weight";
  conv->weight.mul_(-1);  // an in-place change bumps the version: the cache must refresh
  const at::Tensor w3 = conv->quantized_weight();
  EXPECT_TRUE(at::allclose(w3, -w1, 0, 1e-6));
}

TEST(NnLayers, QLinearNamesMatchPyTorch) {
  QLinear fc(QLinearOptions{5, 3});
  const auto params = fc->named_parameters();
  EXPECT_TRUE(params.contains("weight"));
  EXPECT_TRUE(params.contains("bias"));
  EXPECT_EQ(fc(at::randn({7, 5})).sizes(), at::IntArrayRef({7, 3}));
  EXPECT_THROW(QConv2d(QConv2dOptions{6, 4, 3, 1, 1, 4}), std::invalid_argument);  // groups
}

TEST(NnAlpha, LearnsAndStaysPositive) {
  PactReLU act(PactReLUOptions{4, 1.0});
  const at::Tensor x = at::tensor({-1.0f, 0.5f, 2.0f, 3.0f});
  act(x).sum().backward();
  EXPECT_FLOAT_EQ(act->alpha.grad().item<float>(), 2.0f);  // two elements above alpha

  TinyNet net;
  {
    at::NoGradGuard no_grad;
    net->act1->alpha.fill_(-0.5f);
  }
  guard_alphas(*net, 1e-3);
  EXPECT_FLOAT_EQ(net->act1->alpha.item<float>(), 1e-3f);
  {
    at::NoGradGuard no_grad;
    net->block_act->alpha.fill_(std::numeric_limits<float>::quiet_NaN());
  }
  try {
    guard_alphas(*net);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("block.act"), std::string::npos);
  }
}

TEST(NnAlpha, FixedClip) {
  TinyNet net;
  net->act1->set_precision(4, ActivationKind::kClip);
  EXPECT_FALSE(net->act1->alpha.requires_grad());
  EXPECT_EQ(learned_alphas(*net).size(), 1u);
  EXPECT_THROW(net->act1->set_precision(4, ActivationKind::kRelu), std::invalid_argument);
  EXPECT_THROW(PactReLU(PactReLUOptions{4, -1.0}), std::invalid_argument);
}

TEST(NnAlpha, CheckAlphasRejectsWhatALoadCouldBringIn) {
  TinyNet net;
  EXPECT_NO_THROW(check_alphas(*net, "ok.pt"));
  for (float bad : {0.0f, -2.0f, std::numeric_limits<float>::quiet_NaN(),
                    std::numeric_limits<float>::infinity()}) {
    TinyNet other;
    {
      at::NoGradGuard no_grad;
      other->block_act->alpha.fill_(bad);
    }
    try {
      check_alphas(*other, "init.safetensors");
      FAIL() << bad;
    } catch (const std::invalid_argument& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("init.safetensors"), std::string::npos) << what;
      EXPECT_NE(what.find("block.act"), std::string::npos) << what;
    }
  }
  // A fixed clip (DoReFa activations) is checked too: its alpha is used.
  TinyNet fixed;
  fixed->act1->set_precision(4, ActivationKind::kClip);
  {
    at::NoGradGuard no_grad;
    fixed->act1->alpha.fill_(0.0f);
  }
  EXPECT_THROW(check_alphas(*fixed, "x.pt"), std::invalid_argument);
}

TEST(NnProbe, NamesTheFirstActivationWithANonFiniteInput) {
  TinyNet net;
  at::Tensor x = at::randn({2, 3, 6, 6});
  {
    NonFiniteProbe probe;
    net->forward(x);
    EXPECT_EQ(probe.first(), nullptr);
  }
  x[1][2][3][3] = std::numeric_limits<float>::quiet_NaN();
  at::Tensor logits;
  {
    NonFiniteProbe probe;
    logits = net->forward(x);
    EXPECT_EQ(probe.first(), net->act1.get());
    EXPECT_EQ(ActivationObserver::active(), &probe);
  }
  // The NaN reaches the logits through every (fused) activation.
  EXPECT_TRUE(at::isnan(logits[1]).any().item<bool>());
  EXPECT_FALSE(at::isnan(logits[0]).any().item<bool>());
  EXPECT_EQ(ActivationObserver::active(), nullptr);
}

TEST(NnCalibration, ParsesTheSpecAndNamesTheOption) {
  EXPECT_EQ(parse_alpha_calibration("mse").kind, AlphaCalibration::Kind::kMse);
  const AlphaCalibration p = parse_alpha_calibration("p99.5");
  EXPECT_EQ(p.kind, AlphaCalibration::Kind::kPercentile);
  EXPECT_DOUBLE_EQ(p.percentile, 99.5);
  for (const char* bad : {"", "p", "p0", "p101", "p99x", "max", "P99"}) {
    try {
      parse_alpha_calibration(bad);
      FAIL() << bad;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("--alpha-init"), std::string::npos) << e.what();
    }
  }
}

TEST(NnCalibration, AlphaMinimisesTheQuantizationErrorOrTakesThePercentile) {
  at::manual_seed(12);
  // Half-normal activations (a BN output after the clip at 0), sigma 1.
  const at::Tensor x = at::randn({50000});
  // Percentile: of the input as given (negatives included).
  const AlphaCalibration p99 = parse_alpha_calibration("p99");
  EXPECT_NEAR(calibrated_alpha(x, 4, p99), 2.326, 0.05);  // z of the 99th percentile
  // MSE: against a brute-force search written here, at several widths.
  const AlphaCalibration mse = parse_alpha_calibration("mse");
  const at::Tensor r = x.clamp_min(0).to(at::kDouble);
  double previous = 0;
  for (int bits : {2, 3, 4, 8}) {
    const double n = (1 << bits) - 1;
    auto error = [&](double a) {
      return (at::round(r.clamp_max(a) * (n / a)) * (a / n) - r).square().mean().item<double>();
    };
    const double alpha = calibrated_alpha(x, bits, mse);
    double best = 1e30;
    for (double a = 0.5; a <= 4.5; a += 0.02) best = std::min(best, error(a));
    EXPECT_LE(error(alpha), best * 1.01) << bits << " bits, alpha " << alpha;
    // Fewer levels clip harder.
    EXPECT_GT(alpha, previous) << bits;
    previous = alpha;
  }
  // Full precision: only the clip, which costs nothing at the maximum.
  EXPECT_DOUBLE_EQ(calibrated_alpha(x, 32, mse), r.max().item<double>());
  // A dead layer (no positive input) still gets a valid alpha.
  EXPECT_GT(calibrated_alpha(-x.abs(), 4, mse), 0.0);
}

TEST(NnCalibration, CalibratorSeesReluInputsAndSetsEveryClip) {
  TinyNet net;
  net->act1->set_precision(4, ActivationKind::kClip);  // fixed clips are calibrated too
  AlphaCalibrator calibrator(parse_alpha_calibration("p100"));
  at::Tensor logits_observed;
  {
    ActivationObserver* outer = ActivationObserver::active();
    EXPECT_EQ(outer, &calibrator);
    at::NoGradGuard no_grad;
    logits_observed = net->forward(at::randn({4, 3, 8, 8}) * 50);
  }
  const auto layers = calibrator.apply(*net);
  ASSERT_EQ(layers.size(), 2u);
  EXPECT_EQ(layers[0].name, "act1");
  EXPECT_EQ(layers[1].name, "block.act");
  for (const auto& l : layers) {
    EXPECT_GT(l.samples, 0) << l.name;
    // p100 = the largest input seen: the layers saw unclipped inputs (alpha
    // was 10, the inputs reach far beyond it).
    EXPECT_DOUBLE_EQ(l.alpha, l.max_input) << l.name;
    EXPECT_GT(l.alpha, 10.0) << l.name;
  }
  EXPECT_FLOAT_EQ(net->act1->alpha.item<float>(), static_cast<float>(layers[0].alpha));
  EXPECT_FLOAT_EQ(net->block_act->alpha.item<float>(), static_cast<float>(layers[1].alpha));
}

// The clipping report's arithmetic on a hand-checked sample: 2 bits (n = 3),
// alpha 2 (step 2/3). -1 is zero after the clip at 0; 0.5 and 1.5 round to
// 2/3 and 4/3 (error 1/6 each); 3 is clipped to 2 (error 1).
TEST(NnClippingReport, SharesAndErrorsOfAHandCheckedSample) {
  const at::Tensor x = at::tensor({-1.0, 0.5, 1.5, 3.0});
  const pactq::nn::LayerClipping r = pactq::nn::clipping_of(x, 2, 2.0);
  EXPECT_EQ(r.samples, 4);
  EXPECT_DOUBLE_EQ(r.share_zero, 0.25);
  EXPECT_DOUBLE_EQ(r.share_clipped, 0.25);
  EXPECT_NEAR(r.clip_mse, 1.0 / 4, 1e-12);
  EXPECT_NEAR(r.round_mse, 2.0 / 36 / 4, 1e-12);
  EXPECT_NEAR(r.relu_power, (0.25 + 2.25 + 9.0) / 4, 1e-12);
  // The best alpha is found on a grid up to the largest input: never worse
  // than the layer's own, nor than keeping the whole range (alpha 3: error
  // 1/4 + 1/4 from rounding 0.5 and 1.5 to a step of 1, over 4 inputs).
  EXPECT_LE(r.best_mse, r.total_mse());
  EXPECT_LE(r.best_mse, 0.5 / 4 + 1e-12);
  EXPECT_GT(r.best_alpha, 2.0);
  EXPECT_LE(r.best_alpha, 3.0);
}
