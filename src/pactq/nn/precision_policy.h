// PrecisionPolicy: for every quantizable layer of a model, by its module name,
// the weight bits, activation bits and quantizer kinds.
//
//   default          e.g. W4/A4 DoReFa weights, PACT activations
//   first/last rule  the first and last weight layers (in registration order,
//                    which the zoo keeps equal to forward order) at fp, 8 bits,
//                    or the same as the rest. It concerns weights only: every
//                    activation follows the default (the input image is never
//                    quantized).
//   overrides        "PATTERN=BITS" (weights and activations), "PATTERN=wBITS",
//                    "PATTERN=aBITS" or "PATTERN=wBaB", PATTERN a glob over module
//                    names (* any run of characters, ? one). Later overrides win
//                    and override the first/last rule. A pattern that matches no
//                    layer is an error.
#pragma once
#include <torch/nn/module.h>

#include <optional>
#include <string>
#include <vector>

#include "pactq/nn/pact_relu.h"
#include "pactq/quant/weight_quant.h"

namespace pactq::nn {

enum class FirstLastRule { kFullPrecision, kEightBit, kSame };
FirstLastRule parse_first_last(const std::string& text);  // fp | 8 | same
std::string to_string(FirstLastRule rule);

struct PrecisionOverride {
  std::string pattern;
  std::optional<int> wbits;
  std::optional<int> abits;
  static PrecisionOverride parse(const std::string& spec);  // throws naming the spec
};

// What the policy decided for one layer.
struct LayerPrecision {
  std::string name;
  bool is_weight_layer = false;  // QConv2d / QLinear (else an activation)
  int bits = 32;
  std::string quantizer;  // dorefa | sawb | pact | clip | relu
};

struct PrecisionPolicy {
  int wbits = 4;
  int abits = 4;
  FirstLastRule first_last = FirstLastRule::kFullPrecision;
  quant::WeightQuantKind wquant = quant::WeightQuantKind::kDoReFa;
  ActivationKind aquant = ActivationKind::kPact;
  std::vector<PrecisionOverride> overrides;

  // Throws std::invalid_argument for invalid widths or kinds.
  void validate() const;

  // Sets every QConv2d, QLinear and PactReLU in `model`; returns the decisions.
  // Throws if an override matches no layer, or a layer cannot take its width.
  std::vector<LayerPrecision> apply(torch::nn::Module& model) const;

  // "W4/A4 dorefa/pact, first/last fp" and the overrides.
  std::string summary() const;
};

// Glob match used by the overrides (exposed for tests).
bool glob_match(const std::string& pattern, const std::string& text);

}  // namespace pactq::nn
