// The model zoo's registry: create a model by name, list the names, describe one.
//
//   auto model = pactq::models::create_model("resnet20", {});
//   nn::PrecisionPolicy policy{...};
//   policy.apply(*model);
//
// Models are created at full precision (W32/A32) with PACT activations; a
// precision policy sets the widths. With a W32/A32 policy and relu
// activations every model is an ordinary float network.
#pragma once
#include <string>
#include <vector>

#include "pactq/models/lowering.h"
#include "pactq/models/model.h"

namespace pactq::models {

struct ModelOptions {
  int num_classes = 0;       // 0: the model's default
  double alpha_init = 10.0;  // initial PACT clipping level of every activation
  int input_size = 0;        // 0: the model's default (square inputs)
};

struct ModelInfo {
  std::string name;
  std::string description;
  InputShape input;         // default input shape (C, H, W)
  int64_t num_classes = 0;  // default number of classes
  std::string dataset;  // default data set (pactq::data names; "svhn" and "imagenet" have no loader
                        // yet besides imagefolder)
  bool exportable = false;  // registered with a lowering (models/lowering.h)
};

// All registered names, in a stable order.
std::vector<std::string> model_names();

// Throws std::invalid_argument listing the valid names for an unknown name.
ModelInfo model_info(const std::string& name);

// Throws std::invalid_argument for an unknown name (listing the valid ones) or
// invalid options (negative classes, non-positive alpha, too small input).
QuantModelPtr create_model(const std::string& name, const ModelOptions& options = {});

// Describes `model` (created by create_model) to `builder` through the lowering
// registered with its name, starting from the input value `input`. Throws
// std::invalid_argument naming the model and the exportable ones when it has none.
void lower_model(QuantModel& model, Lowering& builder, LoweredValue input);

}  // namespace pactq::models
