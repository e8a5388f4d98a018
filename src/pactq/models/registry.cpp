#include "pactq/models/registry.h"

#include <functional>
#include <stdexcept>

#include "pactq/models/cifar_resnet.h"
#include "pactq/models/plain_nets.h"
#include "pactq/models/preact_resnet.h"

namespace pactq::models {

namespace {

using LowerFn = std::function<void(QuantModel&, Lowering&, LoweredValue)>;

struct Entry {
  ModelInfo info;
  std::function<QuantModelPtr(int64_t classes, double alpha, int64_t size)> make;
  LowerFn lower;  // empty: not exportable
};

// The lowering of model class M: its lower() member, next to its forward().
template <typename M>
LowerFn lowering() {
  return [](QuantModel& model, Lowering& b, LoweredValue x) {
    auto* m = dynamic_cast<M*>(&model);
    if (m == nullptr) {
      throw std::invalid_argument("model '" + model.model_name() +
                                  "' is not the class its registry entry creates");
    }
    m->lower(b, x);
  };
}

Entry cifar_resnet(const std::string& name, int depth) {
  return {{name,
           "CIFAR ResNet-" + std::to_string(depth) +
               " (He et al. 2016, option A shortcuts; akamaster/pytorch_resnet_cifar10 names)",
           {3, 32, 32},
           10,
           "cifar10"},
          [name, depth](int64_t c, double a, int64_t s) {
            return std::make_shared<CifarResNet>(name, depth, c, a, s);
          },
          lowering<CifarResNet>()};
}

Entry preact_resnet(const std::string& name, int depth) {
  return {{name,
           "pre-activation ResNet-" + std::to_string(depth) +
               " for ImageNet (He et al. 2016, fb.resnet.torch)",
           {3, 224, 224},
           1000,
           "imagefolder"},
          [name, depth](int64_t c, double a, int64_t s) {
            return std::make_shared<PreActResNet>(name, depth, c, a, s);
          },
          lowering<PreActResNet>()};
}

const std::vector<Entry>& entries() {
  static const std::vector<Entry> all = {
      {{"lenet5",
        "LeNet-5 with BatchNorm (2 conv + 3 FC) for 28x28 grey images",
        {1, 28, 28},
        10,
        "fashion-mnist"},
       [](int64_t c, double a, int64_t s) { return std::make_shared<LeNet5>(c, a, s); },
       lowering<LeNet5>()},
      cifar_resnet("resnet20", 20),
      cifar_resnet("resnet32", 32),
      cifar_resnet("resnet44", 44),
      cifar_resnet("resnet56", 56),
      {{"svhn7",
        "DoReFa-Net SVHN network (7 conv + 1 FC) as used by PACT, 32x32 input",
        {3, 32, 32},
        10,
        "svhn"},
       [](int64_t c, double a, int64_t s) { return std::make_shared<Svhn7>(c, a, s); },
       lowering<Svhn7>()},
      {{"alexnet_bn",
        "AlexNet with BatchNorm instead of LRN (5 conv + 3 FC) for ImageNet",
        {3, 224, 224},
        1000,
        "imagefolder"},
       [](int64_t c, double a, int64_t s) { return std::make_shared<AlexNetBN>(c, a, s); },
       lowering<AlexNetBN>()},
      preact_resnet("preact_resnet18", 18),
      preact_resnet("preact_resnet50", 50),
  };
  return all;
}

std::string valid_names() {
  std::string out;
  for (const auto& e : entries()) out += (out.empty() ? "" : ", ") + e.info.name;
  return out;
}

const Entry& find(const std::string& name) {
  for (const auto& e : entries()) {
    if (e.info.name == name) return e;
  }
  throw std::invalid_argument("unknown model '" + name + "'; valid names: " + valid_names());
}

}  // namespace

std::vector<std::string> model_names() {
  std::vector<std::string> out;
  for (const auto& e : entries()) out.push_back(e.info.name);
  return out;
}

ModelInfo model_info(const std::string& name) {
  const Entry& e = find(name);
  ModelInfo info = e.info;
  info.exportable = static_cast<bool>(e.lower);
  return info;
}

void lower_model(QuantModel& model, Lowering& builder, LoweredValue input) {
  const Entry* entry = nullptr;
  std::string exportable;
  for (const auto& e : entries()) {
    if (e.info.name == model.model_name()) entry = &e;
    if (e.lower) exportable += (exportable.empty() ? "" : ", ") + e.info.name;
  }
  if (entry == nullptr || !entry->lower) {
    throw std::invalid_argument("export: model '" + model.model_name() +
                                "' has no lowering (exportable models: " + exportable + ")");
  }
  entry->lower(model, builder, input);
}

QuantModelPtr create_model(const std::string& name, const ModelOptions& options) {
  const Entry& e = find(name);
  if (options.num_classes < 0) {
    throw std::invalid_argument(name + ": num_classes must be positive (0 = default), got " +
                                std::to_string(options.num_classes));
  }
  if (!(options.alpha_init > 0.0)) {
    throw std::invalid_argument(name + ": alpha init must be positive, got " +
                                std::to_string(options.alpha_init));
  }
  if (options.input_size < 0) {
    throw std::invalid_argument(name + ": input size must be positive (0 = default), got " +
                                std::to_string(options.input_size));
  }
  const int64_t classes = options.num_classes > 0 ? options.num_classes : e.info.num_classes;
  const int64_t size = options.input_size > 0 ? options.input_size : e.info.input.height;
  return e.make(classes, options.alpha_init, size);
}

}  // namespace pactq::models
