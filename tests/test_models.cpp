// Model zoo: registry, shapes, gradients, parameter names and counts, policy
// placement, and float equivalence with an independent hand-written forward.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/autograd.h>
#include <torch/nn/module.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "pactq/models/cifar_resnet.h"
#include "pactq/models/model.h"
#include "pactq/models/plain_nets.h"
#include "pactq/models/preact_resnet.h"
#include "pactq/models/registry.h"
#include "pactq/nn/pact_relu.h"
#include "pactq/nn/precision_policy.h"
#include "pactq/nn/qconv2d.h"
#include "pactq/nn/qlinear.h"
#include "test_env.h"

using namespace pactq;
using models::create_model;
using models::ModelOptions;

namespace {

const std::string kDataDir = pactq::test::kSharedData;
const std::string kResnet20File = kDataDir + "/pretrained/resnet20-cifar10.safetensors";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Minimal safetensors reader (F32 only): name -> tensor.
struct SafeTensors {
  nlohmann::json header;
  std::map<std::string, at::Tensor> tensors;
};

SafeTensors read_safetensors(const std::string& path, bool with_data) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  unsigned char len_bytes[8];
  in.read(reinterpret_cast<char*>(len_bytes), 8);
  uint64_t len = 0;
  for (int i = 7; i >= 0; --i) len = (len << 8) | len_bytes[i];
  std::string text(len, '\0');
  in.read(text.data(), static_cast<std::streamsize>(len));
  SafeTensors st;
  st.header = nlohmann::json::parse(text);
  if (!with_data) return st;
  std::vector<char> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const auto& [key, value] : st.header.items()) {
    if (key == "__metadata__") continue;
    if (value.at("dtype") != "F32") throw std::runtime_error(key + ": not F32");
    const auto shape = value.at("shape").get<std::vector<int64_t>>();
    const auto offsets = value.at("data_offsets").get<std::vector<size_t>>();
    at::Tensor t = at::empty(shape, at::kFloat);
    if (offsets[1] - offsets[0] != static_cast<size_t>(t.numel()) * 4)
      throw std::runtime_error(key + ": size");
    std::memcpy(t.data_ptr<float>(), data.data() + offsets[0], offsets[1] - offsets[0]);
    st.tensors[key] = t;
  }
  return st;
}

// Parameter and buffer names and shapes of a model, alphas and num_batches_tracked left out.
std::map<std::string, std::vector<int64_t>> state_shapes(const torch::nn::Module& m) {
  std::map<std::string, std::vector<int64_t>> out;
  for (const auto& p : m.named_parameters()) {
    if (!ends_with(p.key(), "alpha")) out[p.key()] = p.value().sizes().vec();
  }
  for (const auto& b : m.named_buffers()) {
    if (!ends_with(b.key(), "num_batches_tracked")) out[b.key()] = b.value().sizes().vec();
  }
  return out;
}

void load_state(torch::nn::Module& m, const std::map<std::string, at::Tensor>& tensors) {
  torch::NoGradGuard no_grad;
  auto params = m.named_parameters();
  auto buffers = m.named_buffers();
  for (const auto& [name, t] : tensors) {
    if (at::Tensor* p = params.find(name)) {
      p->copy_(t);
    } else if (at::Tensor* b = buffers.find(name)) {
      b->copy_(t);
    } else {
      throw std::runtime_error("no tensor " + name + " in the model");
    }
  }
}

nn::PrecisionPolicy float_relu_policy() {
  nn::PrecisionPolicy p;
  p.wbits = 32;
  p.abits = 32;
  p.aquant = nn::ActivationKind::kRelu;
  return p;
}

// Weight-layer names in registration order.
std::vector<std::string> weight_layers(const torch::nn::Module& m) {
  std::vector<std::string> out;
  for (const auto& item : m.named_modules("", false)) {
    const torch::nn::Module* mod = item.value().get();
    if (dynamic_cast<const nn::QConv2dImpl*>(mod) || dynamic_cast<const nn::QLinearImpl*>(mod)) {
      out.push_back(item.key());
    }
  }
  return out;
}

// The independent float forward of akamaster's ResNet20, from a name -> tensor map.
at::Tensor reference_resnet20(const std::map<std::string, at::Tensor>& w, const at::Tensor& x) {
  auto bn = [&](const at::Tensor& t, const std::string& p) {
    return at::batch_norm(t, w.at(p + ".weight"), w.at(p + ".bias"), w.at(p + ".running_mean"),
                          w.at(p + ".running_var"), false, 0.1, 1e-5, false);
  };
  auto conv = [&](const at::Tensor& t, const std::string& p, int64_t stride) {
    return at::conv2d(t, w.at(p + ".weight"), {}, {stride, stride}, {1, 1});
  };
  at::Tensor out = at::relu(bn(conv(x, "conv1", 1), "bn1"));
  int64_t in_planes = 16;
  const int64_t planes_of[3] = {16, 32, 64};
  for (int s = 0; s < 3; ++s) {
    for (int b = 0; b < 3; ++b) {
      const std::string p = "layer" + std::to_string(s + 1) + "." + std::to_string(b);
      const int64_t planes = planes_of[s];
      const int64_t stride = (s > 0 && b == 0) ? 2 : 1;
      at::Tensor y = at::relu(bn(conv(out, p + ".conv1", stride), p + ".bn1"));
      y = bn(conv(y, p + ".conv2", 1), p + ".bn2");
      at::Tensor sc = out;
      if (stride != 1 || in_planes != planes) {
        // x[:, :, ::2, ::2] with planes/4 zero channels on each side, written out by hand.
        at::Tensor sub =
            out.index({at::indexing::Slice(), at::indexing::Slice(),
                       at::indexing::Slice(at::indexing::None, at::indexing::None, 2),
                       at::indexing::Slice(at::indexing::None, at::indexing::None, 2)});
        at::Tensor zeros = at::zeros({sub.size(0), planes / 4, sub.size(2), sub.size(3)});
        sc = at::cat({zeros, sub, zeros}, 1);
      }
      out = at::relu(y + sc);
      in_planes = planes;
    }
  }
  out = at::avg_pool2d(out, {out.size(3), out.size(3)}).view({out.size(0), -1});
  return at::linear(out, w.at("linear.weight"), w.at("linear.bias"));
}

// Parameter count of a CIFAR ResNet with n blocks per stage, from the architecture.
int64_t cifar_resnet_params(int n, int64_t classes) {
  int64_t total = 3 * 16 * 9 + 2 * 16;  // conv1 + bn1
  int64_t in = 16;
  for (int64_t planes : {16, 32, 64}) {
    for (int b = 0; b < n; ++b) {
      total += in * planes * 9 + planes * planes * 9 + 4 * planes;  // conv1, conv2, bn1, bn2
      in = planes;
    }
  }
  return total + 64 * classes + classes;
}

// Runs one training step's backward and checks every weight and alpha got a gradient.
void expect_gradients(models::QuantModel& model, const at::Tensor& x) {
  model.train();
  model.zero_grad();
  at::Tensor logits = model.forward(x);
  const at::Tensor target = at::randint(0, model.num_classes(), {x.size(0)}, at::kLong);
  at::cross_entropy_loss(logits, target).backward();
  int weights = 0, alphas = 0;
  for (const auto& item : model.named_modules("", false)) {
    torch::nn::Module* m = item.value().get();
    at::Tensor w;
    if (auto* c = dynamic_cast<nn::QConv2dImpl*>(m)) w = c->weight;
    if (auto* l = dynamic_cast<nn::QLinearImpl*>(m)) w = l->weight;
    if (w.defined()) {
      ++weights;
      ASSERT_TRUE(w.grad().defined()) << model.model_name() << ": " << item.key();
      EXPECT_GT(w.grad().abs().sum().item<double>(), 0.0)
          << model.model_name() << ": " << item.key();
      EXPECT_TRUE(at::isfinite(w.grad()).all().item<bool>()) << item.key();
    }
    if (auto* a = dynamic_cast<nn::PactReLUImpl*>(m)) {
      ++alphas;
      ASSERT_TRUE(a->alpha.grad().defined()) << model.model_name() << ": " << item.key();
      EXPECT_TRUE(at::isfinite(a->alpha.grad()).all().item<bool>()) << item.key();
      EXPECT_NE(a->alpha.grad().item<double>(), 0.0) << model.model_name() << ": " << item.key();
    }
  }
  EXPECT_GT(weights, 2);
  EXPECT_GT(alphas, 1);
}

}  // namespace

// ------------------------------------------------------------------ registry

TEST(ModelsRegistry, NamesInfoAndErrors) {
  const std::vector<std::string> expected = {"lenet5",     "resnet20",        "resnet32",
                                             "resnet44",   "resnet56",        "svhn7",
                                             "alexnet_bn", "preact_resnet18", "preact_resnet50"};
  EXPECT_EQ(models::model_names(), expected);
  const auto info = models::model_info("resnet20");
  EXPECT_EQ(info.name, "resnet20");
  EXPECT_EQ(info.input, (models::InputShape{3, 32, 32}));
  EXPECT_EQ(info.num_classes, 10);
  EXPECT_EQ(info.dataset, "cifar10");
  EXPECT_EQ(models::model_info("lenet5").input, (models::InputShape{1, 28, 28}));
  EXPECT_EQ(models::model_info("preact_resnet50").num_classes, 1000);
  EXPECT_EQ(models::model_info("alexnet_bn").input, (models::InputShape{3, 224, 224}));

  try {
    create_model("resnet21", {});
    FAIL() << "no throw";
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("resnet21"), std::string::npos) << msg;
    for (const auto& n : expected) EXPECT_NE(msg.find(n), std::string::npos) << msg;
  }
  EXPECT_THROW(models::model_info("vgg16"), std::invalid_argument);
  EXPECT_THROW(create_model("resnet20", ModelOptions{-1, 10.0, 0}), std::invalid_argument);
  EXPECT_THROW(create_model("resnet20", ModelOptions{0, 0.0, 0}), std::invalid_argument);
  EXPECT_THROW(create_model("lenet5", ModelOptions{0, 10.0, 8}), std::invalid_argument);
  EXPECT_THROW(create_model("alexnet_bn", ModelOptions{0, 10.0, 40}), std::invalid_argument);
}

TEST(ModelsRegistry, MetadataAndOptions) {
  auto m = create_model("resnet32", ModelOptions{100, 3.0, 0});
  EXPECT_EQ(m->model_name(), "resnet32");
  EXPECT_EQ(m->name(), "resnet32");
  EXPECT_EQ(m->num_classes(), 100);
  EXPECT_EQ(m->input_shape(), (models::InputShape{3, 32, 32}));
  auto* net = dynamic_cast<models::CifarResNet*>(m.get());
  ASSERT_NE(net, nullptr);
  EXPECT_EQ(net->depth(), 32);
  EXPECT_EQ(net->linear->weight.sizes(), (std::vector<int64_t>{100, 64}));
  // Every activation starts at alpha_init, PACT kind, fp; every weight layer fp.
  for (const auto& item : m->named_modules("", false)) {
    if (auto* a = dynamic_cast<nn::PactReLUImpl*>(item.value().get())) {
      EXPECT_FLOAT_EQ(a->alpha.item<float>(), 3.0f);
      EXPECT_EQ(a->kind(), nn::ActivationKind::kPact);
      EXPECT_EQ(a->bits(), 32);
      EXPECT_TRUE(a->alpha.requires_grad());
    }
    if (auto* c = dynamic_cast<nn::QConv2dImpl*>(item.value().get())) {
      EXPECT_EQ(c->quantization().bits(), 32);
    }
  }
  auto small = create_model("preact_resnet18", ModelOptions{10, 10.0, 64});
  EXPECT_EQ(small->input_shape(), (models::InputShape{3, 64, 64}));
  EXPECT_EQ(small->num_classes(), 10);
}

// ------------------------------------------------------------------ shapes and gradients

TEST(ModelsForward, SmallModelsShapesAndGradients) {
  at::manual_seed(1);
  for (const std::string name : {"lenet5", "resnet20", "resnet32", "svhn7"}) {
    SCOPED_TRACE(name);
    // A small alpha clips often enough that every alpha gets a non-zero gradient.
    auto m = create_model(name, ModelOptions{0, 0.5, 0});
    const auto s = m->input_shape();
    const at::Tensor x = at::randn({4, s.channels, s.height, s.width});
    m->eval();
    EXPECT_EQ(m->forward(x).sizes(), (std::vector<int64_t>{4, m->num_classes()}));
    expect_gradients(*m, x);
  }
  auto c100 = create_model("resnet20", ModelOptions{100, 10.0, 0});
  EXPECT_EQ(c100->forward(at::randn({2, 3, 32, 32})).sizes(), (std::vector<int64_t>{2, 100}));
}

TEST(ModelsForward, DeepCifarResNetsShape) {
  for (const std::string name : {"resnet44", "resnet56"}) {
    auto m = create_model(name, {});
    m->eval();
    torch::NoGradGuard no_grad;
    EXPECT_EQ(m->forward(at::randn({2, 3, 32, 32})).sizes(), (std::vector<int64_t>{2, 10})) << name;
  }
}

TEST(ModelsForward, ImageNetModelsAt224) {
  torch::NoGradGuard no_grad;
  for (const std::string name : {"alexnet_bn", "preact_resnet18", "preact_resnet50"}) {
    auto m = create_model(name, {});
    m->eval();
    EXPECT_EQ(m->input_shape(), (models::InputShape{3, 224, 224}));
    at::Tensor y = m->forward(at::randn({1, 3, 224, 224}));
    EXPECT_EQ(y.sizes(), (std::vector<int64_t>{1, 1000})) << name;
    EXPECT_TRUE(at::isfinite(y).all().item<bool>()) << name;
  }
}

TEST(ModelsForward, ImageNetModelsGradientsAtSmallInput) {
  at::manual_seed(2);
  // The architectures are input-size agnostic down to 64 (ResNets: global
  // pooling; AlexNet: fc6 sized from the input).
  for (const auto& [name, size] : std::vector<std::pair<std::string, int>>{
           {"alexnet_bn", 99}, {"preact_resnet18", 64}, {"preact_resnet50", 64}}) {
    SCOPED_TRACE(name);
    auto m = create_model(name, ModelOptions{10, 0.5, size});
    expect_gradients(*m, at::randn({2, 3, size, size}));
  }
}

// ------------------------------------------------------------------ parameters

TEST(ModelsParameters, ResNet20NamesAndShapesEqualPretrainedFile) {
  const SafeTensors st = read_safetensors(kResnet20File, false);
  std::map<std::string, std::vector<int64_t>> file;
  int64_t file_params = 0;
  for (const auto& [key, value] : st.header.items()) {
    if (key == "__metadata__") continue;
    file[key] = value.at("shape").get<std::vector<int64_t>>();
    if (key.find("running_") == std::string::npos && !ends_with(key, "num_batches_tracked")) {
      int64_t n = 1;
      for (int64_t d : file[key]) n *= d;
      file_params += n;
    }
  }
  auto m = create_model("resnet20", {});
  EXPECT_EQ(state_shapes(*m), file);
  // Parameters (conv, linear, BN affine) of the published model.
  EXPECT_EQ(file_params, 269722);
  const auto count = models::count_parameters(*m);
  EXPECT_EQ(count.weights, file_params);
  EXPECT_EQ(count.weights, cifar_resnet_params(3, 10));
  EXPECT_EQ(count.alphas, 19);  // stem + 2 per block
  EXPECT_EQ(count.buffers, 2 * (16 + 3 * 2 * (16 + 32 + 64)));
}

TEST(ModelsParameters, CifarResNetCountsFromFormula) {
  const std::map<std::string, int> blocks = {
      {"resnet20", 3}, {"resnet32", 5}, {"resnet44", 7}, {"resnet56", 9}};
  // akamaster/pytorch_resnet_cifar10 lists 0.27M, 0.46M, 0.66M and 0.85M.
  const std::map<std::string, int64_t> published = {
      {"resnet20", 269722}, {"resnet32", 464154}, {"resnet44", 658586}, {"resnet56", 853018}};
  for (const auto& [name, n] : blocks) {
    auto m = create_model(name, {});
    const auto c = models::count_parameters(*m);
    EXPECT_EQ(c.weights, cifar_resnet_params(n, 10)) << name;
    EXPECT_EQ(c.weights, published.at(name)) << name;
    EXPECT_EQ(c.alphas, 1 + 2 * 3 * n) << name;
  }
  auto c100 = create_model("resnet56", ModelOptions{100, 10.0, 0});
  EXPECT_EQ(models::count_parameters(*c100).weights, cifar_resnet_params(9, 100));
}

TEST(ModelsParameters, OtherModelCounts) {
  // LeNet-5: convs no bias, fc1/fc2 no bias (BN follows), BN affine.
  const int64_t lenet =
      6 * 25 + 12 + 16 * 6 * 25 + 32 + 400 * 120 + 240 + 120 * 84 + 168 + 84 * 10 + 10;
  EXPECT_EQ(models::count_parameters(*create_model("lenet5", {})).weights, lenet);
  const int64_t svhn = 3 * 48 * 25 + 48 * 64 * 9 + 64 * 64 * 9 + 64 * 128 * 9 + 2 * 128 * 128 * 9 +
                       128 * 512 * 16 + 2 * (48 + 64 + 64 + 128 * 3 + 512) + 512 * 10 + 10;
  EXPECT_EQ(models::count_parameters(*create_model("svhn7", {})).weights, svhn);
  // Pre-activation ResNet18: torchvision's resnet18 (11,689,512) has BN in every
  // shortcut (3 x (2 x C)) and after the stem; the pre-act layout moves BNs
  // around: stem bn1 (64) + per-block bn1 (in planes, none in layer1.0) + bn2 +
  // bn_final (512), and no shortcut BN.
  auto r18 = create_model("preact_resnet18", ModelOptions{0, 10.0, 64});
  const int64_t convs = 3 * 64 * 49 + 4 * 64 * 64 * 9 +
                        (64 * 128 * 9 + 3 * 128 * 128 * 9 + 64 * 128) +
                        (128 * 256 * 9 + 3 * 256 * 256 * 9 + 128 * 256) +
                        (256 * 512 * 9 + 3 * 512 * 512 * 9 + 256 * 512);
  const int64_t bns = 2 * (64 + (64 + 64 + 64) + (64 + 128 + 128 + 128) + (128 + 256 + 256 + 256) +
                           (256 + 512 + 512 + 512) + 512);
  EXPECT_EQ(models::count_parameters(*r18).weights, convs + bns + 512 * 1000 + 1000);
  auto r50 = create_model("preact_resnet50", ModelOptions{0, 10.0, 64});
  EXPECT_NEAR(static_cast<double>(models::count_parameters(*r50).weights), 25.5e6, 0.1e6);
}

// ------------------------------------------------------------------ structure

TEST(ModelsStructure, FirstAndLastWeightLayersInRegistrationOrder) {
  const std::map<std::string, std::pair<std::string, std::string>> edges = {
      {"lenet5", {"conv1", "fc3"}},         {"resnet20", {"conv1", "linear"}},
      {"svhn7", {"conv0", "fc"}},           {"alexnet_bn", {"conv1", "fc8"}},
      {"preact_resnet18", {"conv1", "fc"}}, {"preact_resnet50", {"conv1", "fc"}}};
  for (const auto& [name, fl] : edges) {
    auto m = create_model(name, ModelOptions{0, 10.0, name == "alexnet_bn" ? 67 : 0});
    const auto w = weight_layers(*m);
    ASSERT_GE(w.size(), 2u);
    EXPECT_EQ(w.front(), fl.first) << name;
    EXPECT_EQ(w.back(), fl.second) << name;
    // The last module registered overall is the classifier.
    EXPECT_EQ(m->named_children().keys().back(), fl.second) << name;
  }
}

TEST(ModelsStructure, ResNet20BlocksAreTyped) {
  models::CifarResNet net("resnet20", 20, 10, 10.0);
  ASSERT_EQ(net.stages().size(), 3u);
  const auto children = net.named_children();
  auto* layer2 = dynamic_cast<torch::nn::ModuleListImpl*>(children["layer2"].get());
  ASSERT_NE(layer2, nullptr);
  ASSERT_EQ(layer2->size(), 3u);
  auto* b0 = dynamic_cast<models::CifarBasicBlockImpl*>(layer2->ptr(0).get());
  ASSERT_NE(b0, nullptr);
  EXPECT_EQ(b0, net.stages()[1][0].get());
  EXPECT_TRUE(b0->downsample());
  EXPECT_EQ(b0->in_planes, 16);
  EXPECT_EQ(b0->planes, 32);
  EXPECT_EQ(b0->stride, 2);
  EXPECT_EQ(b0->pad_channels(), 8);
  EXPECT_EQ(b0->conv1->options().stride, 2);
  EXPECT_FALSE(net.stages()[1][1]->downsample());
  std::vector<std::string> names;
  for (const auto& c : b0->named_children()) names.push_back(c.key());
  EXPECT_EQ(names, (std::vector<std::string>{"conv1", "bn1", "act1", "conv2", "bn2", "act2"}));
  // Option A by hand: subsample then pad channels with zeros.
  const at::Tensor x = at::randn({2, 4, 6, 6});
  const at::Tensor y = models::option_a_shortcut(x, 2);
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 8, 3, 3}));
  EXPECT_TRUE(y.slice(1, 0, 2).eq(0).all().item<bool>());
  EXPECT_TRUE(y.slice(1, 6, 8).eq(0).all().item<bool>());
  EXPECT_TRUE(y.slice(1, 2, 6).equal(x.slice(2, 0, 6, 2).slice(3, 0, 6, 2)));
}

TEST(ModelsStructure, PreActBlocks) {
  models::PreActResNet r18("preact_resnet18", 18, 10, 10.0, 64);
  auto* first = dynamic_cast<models::PreActBasicBlockImpl*>(r18.stages()[0][0].get());
  ASSERT_NE(first, nullptr);
  EXPECT_FALSE(first->preact);
  EXPECT_FALSE(first->bn1);
  EXPECT_FALSE(first->shortcut);
  auto* down = dynamic_cast<models::PreActBasicBlockImpl*>(r18.stages()[1][0].get());
  ASSERT_NE(down, nullptr);
  EXPECT_TRUE(down->preact);
  ASSERT_TRUE(down->shortcut);
  EXPECT_EQ(down->shortcut->options().kernel_size, 1);
  EXPECT_EQ(down->shortcut->options().stride, 2);

  models::PreActResNet r50("preact_resnet50", 50, 10, 10.0, 64);
  auto* b = dynamic_cast<models::PreActBottleneckImpl*>(r50.stages()[0][0].get());
  ASSERT_NE(b, nullptr);
  EXPECT_FALSE(b->preact);
  ASSERT_TRUE(b->shortcut);  // 64 -> 256
  EXPECT_EQ(b->shortcut->options().stride, 1);
  std::vector<std::string> names;
  for (const auto& c : r50.stages()[2][0]->named_children()) names.push_back(c.key());
  EXPECT_EQ(names, (std::vector<std::string>{"bn1", "act1", "conv1", "bn2", "act2", "conv2", "bn3",
                                             "act3", "conv3", "shortcut"}));

  // The block forward by hand: pre-activated input feeds both the branch and the projection.
  down->eval();
  torch::NoGradGuard no_grad;
  const at::Tensor x = at::randn({1, 64, 8, 8});
  const at::Tensor p = down->act1->forward(down->bn1->forward(x));
  const at::Tensor branch =
      down->conv2->forward(down->act2->forward(down->bn2->forward(down->conv1->forward(p))));
  EXPECT_TRUE(down->forward(x).allclose(branch + down->shortcut->forward(p)));
}

// ------------------------------------------------------------------ precision policy

TEST(ModelsPolicy, ResNet20FirstLastAndOverrides) {
  auto m = create_model("resnet20", {});
  nn::PrecisionPolicy policy;
  policy.wbits = 4;
  policy.abits = 4;
  policy.first_last = nn::FirstLastRule::kFullPrecision;
  auto decisions = policy.apply(*m);
  std::map<std::string, int> bits;
  for (const auto& d : decisions) bits[d.name] = d.bits;
  EXPECT_EQ(bits.at("conv1"), 32);
  EXPECT_EQ(bits.at("linear"), 32);
  EXPECT_EQ(bits.at("layer1.0.conv1"), 4);
  EXPECT_EQ(bits.at("layer3.2.conv2"), 4);
  EXPECT_EQ(bits.at("act1"), 4);
  EXPECT_EQ(bits.at("layer3.2.act2"), 4);
  EXPECT_EQ(decisions.size(), 20u + 19u);  // 19 convs + linear, 19 activations
  int convs = 0;
  for (const auto& d : decisions) convs += d.is_weight_layer;
  EXPECT_EQ(convs, 20);  // conv1 + 18 block convs + linear

  policy.overrides = {nn::PrecisionOverride::parse("layer3.*=2")};
  decisions = policy.apply(*m);
  int changed = 0;
  for (const auto& d : decisions) {
    const bool in3 = d.name.rfind("layer3.", 0) == 0;
    const int expected = in3 ? 2 : (d.name == "conv1" || d.name == "linear") ? 32 : 4;
    EXPECT_EQ(d.bits, expected) << d.name;
    changed += in3;
  }
  EXPECT_EQ(changed, 3 * 4);  // 3 blocks x (conv1, conv2, act1, act2)
  // The modules carry the decisions.
  auto* net = dynamic_cast<models::CifarResNet*>(m.get());
  EXPECT_EQ(net->stages()[2][1]->conv2->quantization().bits(), 2);
  EXPECT_EQ(net->stages()[2][1]->act1->bits(), 2);
  EXPECT_EQ(net->stages()[1][2]->conv2->quantization().bits(), 4);
  EXPECT_EQ(net->conv1->quantization().bits(), 32);
  EXPECT_EQ(net->act1->bits(), 4);
  // Quantized, the model still runs and differs from fp.
  m->eval();
  torch::NoGradGuard no_grad;
  EXPECT_EQ(m->forward(at::randn({2, 3, 32, 32})).sizes(), (std::vector<int64_t>{2, 10}));
}

// ------------------------------------------------------------------ float equivalence

TEST(ModelsFloat, ResNet20EqualsHandWrittenForwardOnPretrainedWeights) {
  const SafeTensors st = read_safetensors(kResnet20File, true);
  auto m = create_model("resnet20", {});
  load_state(*m, st.tensors);
  float_relu_policy().apply(*m);
  m->eval();
  torch::NoGradGuard no_grad;
  at::manual_seed(3);
  const at::Tensor x = at::randn({4, 3, 32, 32});
  const at::Tensor ours = m->forward(x);
  const at::Tensor ref = reference_resnet20(st.tensors, x);
  EXPECT_TRUE(ours.allclose(ref, 1e-4, 1e-4)) << (ours - ref).abs().max().item<double>();

  // With PACT activations at fp (clip at alpha = 10, not a plain ReLU) the
  // output stays close but the module is still a float network.
  nn::PrecisionPolicy pact_fp = float_relu_policy();
  pact_fp.aquant = nn::ActivationKind::kPact;
  pact_fp.apply(*m);
  EXPECT_EQ(m->forward(x).sizes(), ref.sizes());
}

TEST(ModelsFloat, ResNet20PretrainedClassifiesCifarTestImages) {
  const std::string test_file = kDataDir + "/cifar-10-batches-bin/test_batch.bin";
  std::ifstream in(test_file, std::ios::binary);
  if (!in) PACTQ_SKIP_MISSING("no " << test_file);
  constexpr int kImages = 256;
  std::vector<unsigned char> raw(static_cast<size_t>(kImages) * 3073);
  in.read(reinterpret_cast<char*>(raw.data()), static_cast<std::streamsize>(raw.size()));
  at::Tensor images = at::empty({kImages, 3, 32, 32});
  at::Tensor labels = at::empty({kImages}, at::kLong);
  const float mean[3] = {0.485f, 0.456f, 0.406f};
  const float stdev[3] = {0.229f, 0.224f, 0.225f};
  float* px = images.data_ptr<float>();
  for (int i = 0; i < kImages; ++i) {
    const unsigned char* rec = raw.data() + static_cast<size_t>(i) * 3073;
    labels[i] = static_cast<int64_t>(rec[0]);
    for (int c = 0; c < 3; ++c) {
      for (int p = 0; p < 1024; ++p)
        px[(i * 3 + c) * 1024 + p] = (rec[1 + c * 1024 + p] / 255.0f - mean[c]) / stdev[c];
    }
  }
  auto m = create_model("resnet20", {});
  load_state(*m, read_safetensors(kResnet20File, true).tensors);
  float_relu_policy().apply(*m);
  m->eval();
  torch::NoGradGuard no_grad;
  const double acc = m->forward(images).argmax(1).eq(labels).to(at::kDouble).mean().item<double>();
  EXPECT_GT(acc, 0.85);  // published: 91.73% on all 10,000
}

TEST(ModelsFloat, FpReluPolicyMakesPlainReluEverywhere) {
  for (const auto& name : models::model_names()) {
    const bool imagenet = models::model_info(name).input.height == 224;
    auto m = create_model(name, ModelOptions{0, 10.0, imagenet ? 99 : 0});
    float_relu_policy().apply(*m);
    for (const auto& item : m->named_modules("", false)) {
      if (auto* a = dynamic_cast<nn::PactReLUImpl*>(item.value().get())) {
        EXPECT_EQ(a->kind(), nn::ActivationKind::kRelu) << name << " " << item.key();
      }
      if (auto* c = dynamic_cast<nn::QConv2dImpl*>(item.value().get())) {
        EXPECT_EQ(c->quantization().bits(), 32) << name << " " << item.key();
        // fp weight layers use the float weight unchanged.
        EXPECT_TRUE(c->quantized_weight().equal(c->weight)) << name << " " << item.key();
      }
    }
  }
}

// An independent float LeNet-5 forward from the parameters.
TEST(ModelsFloat, LeNet5EqualsHandWrittenForward) {
  models::LeNet5 m(10, 10.0);
  float_relu_policy().apply(m);
  m.eval();
  torch::NoGradGuard no_grad;
  // Non-trivial BN statistics.
  for (auto& b : m.named_buffers()) {
    if (ends_with(b.key(), "running_mean")) b.value().uniform_(-0.5, 0.5);
    if (ends_with(b.key(), "running_var")) b.value().uniform_(0.5, 2.0);
  }
  auto bn = [](const at::Tensor& t, const auto& b) {
    return at::batch_norm(t, b->weight, b->bias, b->running_mean, b->running_var, false, 0.1, 1e-5,
                          false);
  };
  const at::Tensor x = at::randn({3, 1, 28, 28});
  at::Tensor r =
      at::max_pool2d(at::relu(bn(at::conv2d(x, m.conv1->weight, {}, 1, 2), m.bn1)), {2, 2});
  r = at::max_pool2d(at::relu(bn(at::conv2d(r, m.conv2->weight), m.bn2)), {2, 2});
  r = r.reshape({3, 400});
  r = at::relu(bn(at::linear(r, m.fc1->weight), m.bn3));
  r = at::relu(bn(at::linear(r, m.fc2->weight), m.bn4));
  r = at::linear(r, m.fc3->weight, m.fc3->bias);
  EXPECT_TRUE(m.forward(x).allclose(r, 1e-5, 1e-5));
}

namespace pactq::models {
namespace {

// "Exportable" is a property of the registry: every model of the zoo
// registers its lowering next to its forward.
TEST(ModelRegistry, EveryModelRegistersALowering) {
  for (const std::string& name : model_names()) EXPECT_TRUE(model_info(name).exportable) << name;
}

// A model the registry does not know has no lowering: one clear error naming
// it and the exportable models.
TEST(ModelRegistry, LoweringAnUnknownModelNamesTheExportableOnes) {
  struct Custom : QuantModel {
    Custom() : QuantModel("custom_net", InputShape{1, 4, 4}, 2) {}
    at::Tensor forward(const at::Tensor& x) override { return x; }
  };
  struct NoBuilder : Lowering {
    LoweredValue linear(const std::string&, nn::QLinear, LoweredValue x, torch::nn::BatchNorm1d,
                        nn::PactReLU) override {
      return x;
    }
    LoweredValue affine(const std::string&, LoweredValue x, torch::nn::BatchNorm2d,
                        nn::PactReLU) override {
      return x;
    }
    LoweredValue max_pool(const std::string&, torch::nn::MaxPool2d, LoweredValue x) override {
      return x;
    }
    LoweredValue global_avg_pool(const std::string&, LoweredValue x) override { return x; }
    LoweredValue flatten(const std::string&, LoweredValue x) override { return x; }

   protected:
    LoweredValue conv_node(const std::string&, nn::QConv2d, LoweredValue x, torch::nn::BatchNorm2d,
                           nn::PactReLU, const ResidualInput*) override {
      return x;
    }
  };
  Custom model;
  NoBuilder builder;
  try {
    lower_model(model, builder, LoweredValue{0});
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("custom_net"), std::string::npos) << what;
    EXPECT_NE(what.find("resnet20"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace pactq::models
