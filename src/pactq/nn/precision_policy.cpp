#include "pactq/nn/precision_policy.h"

#include <stdexcept>

#include "pactq/nn/qconv2d.h"
#include "pactq/nn/qlinear.h"
#include "pactq/quant/bits.h"

namespace pactq::nn {

FirstLastRule parse_first_last(const std::string& text) {
  if (text == "fp" || text == "32" || text == "fp32") return FirstLastRule::kFullPrecision;
  if (text == "8") return FirstLastRule::kEightBit;
  if (text == "same") return FirstLastRule::kSame;
  throw std::invalid_argument("--first-last: '" + text +
                              "' is not a rule (expected fp, 8 or same)");
}

std::string to_string(FirstLastRule rule) {
  switch (rule) {
    case FirstLastRule::kFullPrecision:
      return "fp";
    case FirstLastRule::kEightBit:
      return "8";
    case FirstLastRule::kSame:
      return "same";
  }
  return "?";
}

PrecisionOverride PrecisionOverride::parse(const std::string& spec) {
  const auto eq = spec.rfind('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
    throw std::invalid_argument("precision override '" + spec +
                                "': expected PATTERN=BITS, PATTERN=wBITS, PATTERN=aBITS or "
                                "PATTERN=wBITSaBITS (e.g. layer3.*=2)");
  }
  PrecisionOverride out;
  out.pattern = spec.substr(0, eq);
  const std::string value = spec.substr(eq + 1);
  const std::string what = "precision override '" + spec + "'";
  if (value[0] != 'w' && value[0] != 'a') {
    const int bits = quant::parse_bits(value, what);
    out.wbits = bits;
    out.abits = bits;
    return out;
  }
  // w4a2, w4, a2, wfpa4 ...
  size_t pos = 0;
  while (pos < value.size()) {
    const char which = value[pos];
    if (which != 'w' && which != 'a') {
      throw std::invalid_argument(what + ": expected 'w' or 'a' at '" + value.substr(pos) + "'");
    }
    size_t next = value.find_first_of("wa", pos + 1);
    const std::string bits_text =
        value.substr(pos + 1, next == std::string::npos ? std::string::npos : next - pos - 1);
    const int bits = quant::parse_bits(bits_text, what);
    (which == 'w' ? out.wbits : out.abits) = bits;
    pos = next == std::string::npos ? value.size() : next;
  }
  return out;
}

bool glob_match(const std::string& pattern, const std::string& text) {
  // Iterative matcher with backtracking to the last '*'.
  size_t p = 0, t = 0, star = std::string::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

void PrecisionPolicy::validate() const {
  quant::check_bits(wbits, "--wbits", wquant == quant::WeightQuantKind::kSawb ? 2 : 1);
  quant::check_bits(abits, "--abits");
  if (aquant == ActivationKind::kRelu && !quant::is_full_precision(abits)) {
    throw std::invalid_argument(
        "--act-quant relu needs --abits fp (relu has no clipping level to "
        "quantize with); use pact or clip");
  }
}

std::vector<LayerPrecision> PrecisionPolicy::apply(torch::nn::Module& model) const {
  validate();
  struct WeightLayer {
    std::string name;
    QuantizedWeight* quantization;
  };
  struct Activation {
    std::string name;
    PactReLUImpl* module;
  };
  std::vector<WeightLayer> weights;
  std::vector<Activation> activations;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    torch::nn::Module* m = item.value().get();
    if (auto* conv = dynamic_cast<QConv2dImpl*>(m)) {
      weights.push_back({item.key(), &conv->quantization()});
    } else if (auto* linear = dynamic_cast<QLinearImpl*>(m)) {
      weights.push_back({item.key(), &linear->quantization()});
    } else if (auto* act = dynamic_cast<PactReLUImpl*>(m)) {
      activations.push_back({item.key(), act});
    }
  }

  std::vector<int> wb(weights.size(), wbits);
  std::vector<int> ab(activations.size(), abits);
  if (!weights.empty() && first_last != FirstLastRule::kSame) {
    const int edge = first_last == FirstLastRule::kFullPrecision ? quant::kFullPrecision : 8;
    wb.front() = edge;
    wb.back() = edge;
  }
  for (const PrecisionOverride& o : overrides) {
    bool matched = false;
    for (size_t i = 0; i < weights.size(); ++i) {
      if (glob_match(o.pattern, weights[i].name)) {
        matched = true;
        if (o.wbits) wb[i] = *o.wbits;
      }
    }
    for (size_t i = 0; i < activations.size(); ++i) {
      if (glob_match(o.pattern, activations[i].name)) {
        matched = true;
        if (o.abits) ab[i] = *o.abits;
      }
    }
    if (!matched) {
      std::string names;
      for (const auto& w : weights) names += (names.empty() ? "" : ", ") + w.name;
      for (const auto& a : activations) names += ", " + a.name;
      throw std::invalid_argument("precision override '" + o.pattern +
                                  "' matches no quantizable layer; the layers are: " + names);
    }
  }

  std::vector<LayerPrecision> out;
  for (size_t i = 0; i < weights.size(); ++i) {
    const std::string what = "layer '" + weights[i].name + "'";
    quant::check_bits(wb[i], what, wquant == quant::WeightQuantKind::kSawb ? 2 : 1);
    weights[i].quantization->set(wb[i], wquant);
    out.push_back({weights[i].name, true, wb[i], quant::to_string(wquant)});
  }
  for (size_t i = 0; i < activations.size(); ++i) {
    ActivationKind kind = aquant;
    // A pact policy keeps learnable clipping at fp; a relu policy cannot
    // quantize, so an override to k bits on a relu model uses PACT.
    if (kind == ActivationKind::kRelu && !quant::is_full_precision(ab[i]))
      kind = ActivationKind::kPact;
    try {
      activations[i].module->set_precision(ab[i], kind);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("layer '" + activations[i].name + "': " + e.what());
    }
    out.push_back({activations[i].name, false, ab[i], to_string(kind)});
  }
  return out;
}

std::string PrecisionPolicy::summary() const {
  std::string s = "W" + quant::bits_to_string(wbits) + "/A" + quant::bits_to_string(abits) + " " +
                  quant::to_string(wquant) + "/" + to_string(aquant) + ", first/last " +
                  to_string(first_last);
  for (const auto& o : overrides) {
    s += ", " + o.pattern + "=";
    if (o.wbits) s += "w" + quant::bits_to_string(*o.wbits);
    if (o.abits) s += "a" + quant::bits_to_string(*o.abits);
  }
  return s;
}

}  // namespace pactq::nn
