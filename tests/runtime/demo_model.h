// A small valid .pqm for tests that need one without LibTorch (the C API test,
// the installed-package example): input 3x8x8 -> conv (4-bit weights, float
// path, 4-bit codes out) -> conv (integer path) -> global pool -> linear (fp).
#pragma once

#include <random>
#include <string>
#include <vector>

#include "pactq/runtime/writer.h"
#include "test_util.h"

namespace pactq::rt::test {

// The demo input of the tests outside C++ (write_demo_model's logits): pixel k
// of a [kDemoBatch, 3, 8, 8] batch, exact in float and easy to spell in Python.
constexpr int kDemoBatch = 2;
inline float demo_pixel(size_t k) { return static_cast<float>(k % 256) / 256.f; }

inline ModelWriter demo_model_writer(uint32_t seed) {
  std::mt19937 rng(seed);
  ModelWriter w;
  w.set_model("demo");
  w.set_classes({"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9"});
  w.add(InputNode{"input", 3, 8, 8, {0.5f, 0.5f, 0.5f}, {0.25f, 0.25f, 0.25f}});
  for (int i = 0; i < 2; ++i) {
    ConvNode c;
    c.name = "conv" + std::to_string(i + 1);
    c.input = i == 0 ? "input" : "conv1";
    c.in_channels = i == 0 ? 3 : 8;
    c.out_channels = 8;
    c.kernel_h = c.kernel_w = 3;
    c.pad_h = c.pad_w = 1;
    const size_t count = static_cast<size_t>(c.out_channels) * c.in_channels * 9;
    c.weight = WeightData::Codes(random_codes(rng, count, 4), 4, 0.5f);
    c.out_scale = random_floats(rng, 8, 0.01f, 0.03f);
    c.out_bias = random_floats(rng, 8, 0.f, 1.f);
    c.output = OutputSpec::Codes(4, 2.f);
    w.add(c);
  }
  w.add(GlobalAvgPoolNode{"gap", "conv2", OutputSpec::Float()});
  LinearNode fc;
  fc.name = "fc";
  fc.input = "gap";
  fc.in_features = 8;
  fc.out_features = 10;
  fc.weight = WeightData::Float(random_floats(rng, 80, -1.f, 1.f));
  fc.out_scale.assign(10, 1.f);
  fc.out_bias = random_floats(rng, 10, -0.1f, 0.1f);
  fc.output = OutputSpec::Float();
  w.add(fc);
  return w;
}

}  // namespace pactq::rt::test
