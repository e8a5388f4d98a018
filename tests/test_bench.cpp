// Benchmark harness smoke tests: the harness measures what it claims (not speed).
#include <gtest/gtest.h>

#include "pactq/train/step_benchmark.h"

using namespace pactq::train;

namespace {
TrainConfig variant(const std::string& bits, const std::string& act) {
  TrainConfig c;
  c.model = "resnet20";
  c.wbits = c.abits = bits;
  c.act_quant = act;
  return c;
}
}  // namespace

TEST(BenchTrain, TimesEveryVariantInterleaved) {
  StepBenchmarkOptions o;
  o.batch_size = 4;
  o.warmup = 1;
  o.steps = 3;
  const auto t = benchmark_training_steps({variant("fp", "relu"), variant("4", "pact")}, o);
  ASSERT_EQ(t.size(), 2u);
  for (const auto& s : t) {
    EXPECT_EQ(s.seconds.size(), 3u);
    EXPECT_GT(s.median(), 0.0);
  }
  EXPECT_EQ(t[1].label, "resnet20 W4/A4");
}

TEST(BenchTrain, StepMemoryOfPactStaysCloseToFloat) {
  const auto m = measure_step_memory({variant("fp", "relu"), variant("4", "pact")}, 16);
  ASSERT_EQ(m.size(), 2u);
  // Activations of a 16-image ResNet20 step are several MB.
  EXPECT_GT(m[0].peak_bytes, 4 << 20);
  // PACT keeps a 1-byte mask per activation instead of nothing extra: the
  // quantized step may cost a little more, never a second copy of everything.
  EXPECT_LT(static_cast<double>(m[1].peak_bytes) / m[0].peak_bytes, 1.5);
}
