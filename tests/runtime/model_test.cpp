// End to end: ModelWriter -> Model::load -> run, against the naive evaluator.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include "demo_model.h"
#include "pactq/runtime/inspect.h"
#include "pactq/runtime/model.h"
#include "pactq/runtime/writer.h"
#include "test_util.h"

namespace pactq::rt {
namespace {

using test::TVal;

TVal naive_input(const InputNode& n, const float* pixels) {
  TVal t = test::make_output(OutputSpec::Float(), n.channels, n.height, n.width);
  for (size_t i = 0; i < t.size(); ++i) {
    const int c = static_cast<int>(i / (static_cast<size_t>(n.height) * n.width));
    t.f[i] = (pixels[i] - n.mean[c]) / n.std[c];
  }
  return t;
}

TVal naive_pool(const PoolNode& n, const TVal& x) {
  const int oh = (x.h + 2 * n.pad_h - n.kernel_h) / n.stride_h + 1;
  const int ow = (x.w + 2 * n.pad_w - n.kernel_w) / n.stride_w + 1;
  TVal y;
  if (n.max) {
    y = x;
    y.h = oh;
    y.w = ow;
    y.a.assign(y.codes ? y.size() : 0, 0);
    y.f.assign(y.codes ? 0 : y.size(), 0.f);
  } else {
    y = test::make_output(n.output, x.c, oh, ow);
  }
  for (int c = 0; c < x.c; ++c)
    for (int i = 0; i < oh; ++i)
      for (int j = 0; j < ow; ++j) {
        int isum = 0, imax = 0;
        float fsum = 0.f, fmax = -1e30f;
        for (int r = 0; r < n.kernel_h; ++r)
          for (int s = 0; s < n.kernel_w; ++s) {
            const int ih = i * n.stride_h - n.pad_h + r, iw = j * n.stride_w - n.pad_w + s;
            if (ih < 0 || ih >= x.h || iw < 0 || iw >= x.w) continue;
            const size_t xi = x.at(c, ih, iw);
            if (x.codes) {
              isum += x.a[xi];
              imax = std::max(imax, x.a[xi]);
            } else {
              fsum += x.f[xi];
              fmax = std::max(fmax, x.f[xi]);
            }
          }
        const size_t yi = y.at(c, i, j);
        if (n.max) {
          if (x.codes) {
            y.a[yi] = imax;
          } else {
            y.f[yi] = fmax;
          }
        } else {
          const float count = static_cast<float>(n.kernel_h * n.kernel_w);
          const float v = x.codes ? static_cast<float>(isum) * x.scale() / count : fsum / count;
          test::set_output(y, n.output, yi, v);
        }
      }
  return y;
}

TVal naive_gap(const GlobalAvgPoolNode& n, const TVal& x) {
  TVal y = test::make_output(n.output, x.c, 1, 1);
  for (int c = 0; c < x.c; ++c) {
    int isum = 0;
    float fsum = 0.f;
    for (int i = 0; i < x.h * x.w; ++i) {
      const size_t xi = static_cast<size_t>(c) * x.h * x.w + i;
      if (x.codes) {
        isum += x.a[xi];
      } else {
        fsum += x.f[xi];
      }
    }
    const float count = static_cast<float>(x.h * x.w);
    test::set_output(y, n.output, c,
                     x.codes ? static_cast<float>(isum) * x.scale() / count : fsum / count);
  }
  return y;
}

TVal naive_flatten(const TVal& x) {
  TVal y = x;
  y.c = static_cast<int>(x.size());
  y.h = y.w = 1;
  return y;
}

TVal naive_add(const AddNode& n, const TVal& a, const TVal& b) {
  TVal y = test::make_output(n.output, a.c, a.h, a.w);
  for (size_t i = 0; i < y.size(); ++i) test::set_output(y, n.output, i, a.real(i) + b.real(i));
  return y;
}

TVal naive_affine(const AffineNode& n, const TVal& x) {
  TVal y = test::make_output(n.output, x.c, x.h, x.w);
  for (size_t i = 0; i < y.size(); ++i) {
    const int c = static_cast<int>(i / (static_cast<size_t>(x.h) * x.w));
    float v = n.scale[c] * x.real(i);
    v = v + n.bias[c];
    test::set_output(y, n.output, i, v);
  }
  return y;
}

ConvNode as_conv(const LinearNode& l) {
  ConvNode c;
  c.in_channels = l.in_features;
  c.out_channels = l.out_features;
  c.weight = l.weight;
  c.out_scale = l.out_scale;
  c.out_bias = l.out_bias;
  c.output = l.output;
  return c;
}

ConvNode make_conv(std::mt19937& rng, const std::string& name, const std::string& input, int cin,
                   int cout, int k, int stride, int wbits, OutputSpec out, int groups = 1) {
  ConvNode n;
  n.name = name;
  n.input = input;
  n.in_channels = cin;
  n.out_channels = cout;
  n.kernel_h = n.kernel_w = k;
  n.stride_h = n.stride_w = stride;
  n.pad_h = n.pad_w = k / 2;
  n.groups = groups;
  const size_t count = static_cast<size_t>(cout) * (cin / groups) * k * k;
  if (wbits == 0) {
    n.weight = WeightData::Float(test::random_floats(rng, count, -0.5f, 0.5f));
    n.out_scale.assign(cout, 1.f);
  } else {
    n.weight = WeightData::Codes(test::random_codes(rng, count, wbits), wbits, 0.5f);
    const float nw = static_cast<float>((1 << wbits) - 1);
    n.out_scale = test::random_floats(rng, cout, 0.5f / nw, 1.5f / nw);
    for (auto& s : n.out_scale) s *= 0.2f / std::sqrt(static_cast<float>(count / cout));
  }
  n.out_bias = test::random_floats(rng, cout, -0.3f, 0.8f);
  n.output = out;
  return n;
}

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "pactq_" + name + "_" + std::to_string(::getpid()) + ".pqm";
}

void expect_close(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i], want[i], 1e-4f * (1.f + std::fabs(want[i]))) << "index " << i;
  }
}

// ResNet-style: fp first conv, 4-bit convs, fused residual (option A, stride 2,
// channel pad), conv -> FLOAT + explicit add -> codes, gap, fp linear.
struct ResNetLike {
  InputNode in{"input", 3, 8, 8, {0.5f, 0.4f, 0.3f}, {0.25f, 0.2f, 0.3f}};
  ConvNode c1, c2, c3, c4;
  AddNode add;
  GlobalAvgPoolNode gap;
  LinearNode fc;

  explicit ResNetLike(uint32_t seed) {
    std::mt19937 rng(seed);
    c1 = make_conv(rng, "conv1", "input", 3, 8, 3, 1, 0, OutputSpec::Codes(4, 3.f));
    c2 = make_conv(rng, "layer1.conv1", "conv1", 8, 8, 3, 1, 4, OutputSpec::Codes(4, 2.5f));
    c3 = make_conv(rng, "layer2.conv1", "layer1.conv1", 8, 16, 3, 2, 4, OutputSpec::Codes(4, 2.f));
    c3.residual = Residual{"conv1", 2, 4};
    c4 = make_conv(rng, "layer2.conv2", "layer2.conv1", 16, 16, 3, 1, 4, OutputSpec::Float());
    add = AddNode{"layer2.add", "layer2.conv2", "layer2.conv1", OutputSpec::Codes(4, 4.f)};
    gap = GlobalAvgPoolNode{"gap", "layer2.add", OutputSpec::Float()};
    fc.name = "fc";
    fc.input = "gap";
    fc.in_features = 16;
    fc.out_features = 10;
    fc.weight = WeightData::Float(test::random_floats(rng, 160, -1.f, 1.f));
    fc.out_scale.assign(10, 1.f);
    fc.out_bias = test::random_floats(rng, 10, -0.1f, 0.1f);
    fc.output = OutputSpec::Float();
  }
  ModelWriter writer() const {
    ModelWriter w;
    w.set_model("resnet_like");
    w.set_classes({"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"});
    w.add(in);
    w.add(c1);
    w.add(c2);
    w.add(c3);
    w.add(c4);
    w.add(add);
    w.add(gap);
    w.add(fc);
    return w;
  }
  std::map<std::string, TVal> naive(const float* pixels) const {
    std::map<std::string, TVal> v;
    v["input"] = naive_input(in, pixels);
    v["conv1"] = test::naive_conv(c1, v["input"], nullptr);
    v["layer1.conv1"] = test::naive_conv(c2, v["conv1"], nullptr);
    v["layer2.conv1"] = test::naive_conv(c3, v["layer1.conv1"], &v["conv1"]);
    v["layer2.conv2"] = test::naive_conv(c4, v["layer2.conv1"], nullptr);
    v["layer2.add"] = naive_add(add, v["layer2.conv2"], v["layer2.conv1"]);
    v["gap"] = naive_gap(gap, v["layer2.add"]);
    v["fc"] = test::naive_conv(as_conv(fc), v["gap"], nullptr);
    return v;
  }
};

TEST(Model, ResNetLikeGraphMatchesNaiveEvaluation) {
  const ResNetLike net(3);
  const std::string path = temp_path("resnet_like");
  net.writer().write(path);
  Model m = Model::load(path);
  std::remove(path.c_str());
  EXPECT_EQ(m.classes(), 10);
  EXPECT_EQ(m.input_channels(), 3);
  EXPECT_EQ(m.input_height(), 8);
  EXPECT_EQ(m.model_name(), "resnet_like");
  EXPECT_EQ(m.class_names().size(), 10u);

  std::mt19937 rng(9);
  const int batch = 3;
  const auto pixels = test::random_floats(rng, batch * 3 * 8 * 8, 0.f, 1.f);
  const auto logits = m.run(pixels.data(), batch);
  ASSERT_EQ(logits.size(), static_cast<size_t>(batch * 10));
  for (int b = 0; b < batch; ++b) {
    const auto want = net.naive(pixels.data() + b * 192);
    expect_close(std::vector<float>(logits.begin() + b * 10, logits.begin() + (b + 1) * 10),
                 want.at("fc").f);
    // Every intermediate codes tensor agrees exactly.
    for (const std::string name : {"conv1", "layer1.conv1", "layer2.conv1", "layer2.add"}) {
      const NodeOutput o = m.debug_output(name, pixels.data(), batch);
      ASSERT_TRUE(o.codes) << name;
      const TVal& t = want.at(name);
      ASSERT_EQ(o.code_values.size(), t.size() * batch);
      for (size_t i = 0; i < t.size(); ++i) {
        ASSERT_EQ(o.code_values[b * t.size() + i], t.a[i]) << name << " image " << b << " i " << i;
      }
    }
    const NodeOutput f = m.debug_output("layer2.conv2", pixels.data(), batch);
    EXPECT_FALSE(f.codes);
    expect_close(std::vector<float>(f.values.begin() + b * 256, f.values.begin() + (b + 1) * 256),
                 want.at("layer2.conv2").f);
  }
  // Codes are not all zero or saturated (the test would be weak otherwise).
  const NodeOutput o = m.debug_output("layer2.conv1", pixels.data(), batch);
  int zeros = 0, sat = 0;
  for (uint8_t a : o.code_values) {
    zeros += a == 0;
    sat += a == 15;
  }
  EXPECT_LT(zeros + sat, static_cast<int>(o.code_values.size()) * 3 / 4);
}

TEST(Model, ThreadsAndBatchDoNotChangeResults) {
  const ResNetLike net(5);
  const auto bytes = net.writer().serialize();
  Model m = Model::load_from_memory(bytes.data(), bytes.size());
  std::mt19937 rng(1);
  const int batch = 5;
  const auto pixels = test::random_floats(rng, batch * 192, 0.f, 1.f);
  const auto one = m.run(pixels.data(), batch);
  m.set_threads(2);
  EXPECT_EQ(m.threads(), 2);
  EXPECT_EQ(m.run(pixels.data(), batch), one);
  for (int b = 0; b < batch; ++b) {
    const auto single = m.run(pixels.data() + b * 192, 1);
    EXPECT_EQ(single, std::vector<float>(one.begin() + b * 10, one.begin() + (b + 1) * 10));
  }
  m.set_threads(3);
  EXPECT_EQ(m.run(pixels.data(), batch), one);
}

// One Model, many callers: each thread brings its own ExecutionContext and
// gets exactly the single-threaded results (the weights are shared, read-only).
// Built under ThreadSanitizer too (docs/architecture.md).
TEST(Model, EightThreadsShareOneModelBitForBit) {
  const ResNetLike net(7);
  const auto bytes = net.writer().serialize();
  const Model m = Model::load_from_memory(bytes.data(), bytes.size());
  constexpr int kThreads = 8, kRounds = 20;
  std::mt19937 rng(3);
  std::vector<std::vector<float>> pixels(kThreads), want(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    const int batch = 1 + t % 5;  // 1..5 images: both the per-layer and the sliced path
    pixels[t] = test::random_floats(rng, static_cast<size_t>(batch) * 192, 0.f, 1.f);
    ExecutionContext alone;
    want[t] = m.run(pixels[t].data(), batch, alone);
  }
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ExecutionContext context(1 + t % 2);  // some callers split their batch over 2 workers
      const int batch = static_cast<int>(pixels[t].size() / 192);
      for (int r = 0; r < kRounds; ++r) {
        const std::vector<float> got = m.run(pixels[t].data(), batch, context);
        if (got.size() != want[t].size() ||
            std::memcmp(got.data(), want[t].data(), got.size() * sizeof(float)) != 0) {
          ++mismatches[t];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

// A trace keeps every node's output of one pass in its own buffers: the
// output node equals run(), and later runs on the same context leave it intact.
TEST(Model, TraceKeepsEveryNodeOfOnePass) {
  const ResNetLike net(9);
  const auto bytes = net.writer().serialize();
  const Model m = Model::load_from_memory(bytes.data(), bytes.size());
  std::mt19937 rng(4);
  const int batch = 3;
  const auto pixels = test::random_floats(rng, batch * 192, 0.f, 1.f);
  const auto other = test::random_floats(rng, batch * 192, 0.f, 1.f);
  ExecutionContext context;
  const Trace trace = m.trace(pixels.data(), batch, context);
  const std::vector<float> logits = m.run(pixels.data(), batch, context);
  (void)m.run(other.data(), batch, context);  // reuses the context's buffers
  ASSERT_EQ(trace.size(), m.node_names().size());
  EXPECT_EQ(trace.output("fc").values, logits);
  for (int b = 0; b < batch; ++b) {
    const std::map<std::string, TVal> v = net.naive(pixels.data() + b * 192);
    for (const std::string name : {"conv1", "layer1.conv1", "layer2.conv1", "layer2.add"}) {
      const NodeOutput o = trace.output(name);
      const TVal& t = v.at(name);
      ASSERT_EQ(static_cast<size_t>(o.channels) * o.height * o.width, t.size()) << name;
      for (size_t i = 0; i < t.size(); ++i)
        ASSERT_EQ(o.code_values[b * t.size() + i], t.a[i]) << name << " image " << b << " i " << i;
    }
  }
  EXPECT_THROW(trace.output("nope"), FormatError);
}

// profile() names every node in order with its op, path and output shape,
// counts each conv's and linear's arithmetic for the whole batch, times every
// node, and leaves run()'s results as they were.
TEST(Model, ProfileTimesEveryNodeAndCountsConvOps) {
  const auto bytes = test::demo_model_writer(5).serialize();
  Model m = Model::load_from_memory(bytes.data(), bytes.size());
  std::mt19937 rng(6);
  const int batch = 3;
  const auto pixels = test::random_floats(rng, batch * 192, 0.f, 1.f);
  const std::vector<float> before = m.run(pixels.data(), batch);
  const std::vector<NodeProfile> prof = m.profile(pixels.data(), batch, 5);
  ASSERT_EQ(prof.size(), m.node_names().size());
  const char* ops[] = {"input", "conv2d", "conv2d", "global_avg_pool", "linear"};
  const char* paths[] = {"", "float", "int", "", "float"};
  const double want_ops[] = {0, 2.0 * batch * 8 * 8 * 8 * 3 * 9, 2.0 * batch * 8 * 8 * 8 * 8 * 9, 0,
                             2.0 * batch * 8 * 10};
  double total = 0;
  for (size_t i = 0; i < prof.size(); ++i) {
    EXPECT_EQ(prof[i].node, m.node_names()[i]);
    EXPECT_EQ(prof[i].op, ops[i]) << prof[i].node;
    EXPECT_EQ(prof[i].path, paths[i]) << prof[i].node;
    EXPECT_EQ(prof[i].ops, want_ops[i]) << prof[i].node;
    EXPECT_GT(prof[i].seconds, 0.0) << prof[i].node << " was not timed";
    total += prof[i].seconds;
  }
  EXPECT_EQ(prof[2].channels, 8);
  EXPECT_EQ(prof[2].height, 8);
  EXPECT_EQ(prof[4].channels, 10);
  EXPECT_GT(total, 0.0);
  // (No order between the nodes' times is asserted: on a busy machine any
  // node may be the slow one; the structure above is what profile() owes.)
  EXPECT_EQ(m.run(pixels.data(), batch), before);
  EXPECT_THROW(m.profile(pixels.data(), batch, 0), std::invalid_argument);
  EXPECT_THROW(m.profile(pixels.data(), 0, 3), std::invalid_argument);
}

TEST(Model, PoolsAffineFlattenDepthwiseAndIntegerLinear) {
  std::mt19937 rng(11);
  InputNode in{"input", 3, 12, 12, {0.5f, 0.5f, 0.5f}, {0.5f, 0.5f, 0.5f}};
  // 8-bit codes weights with float input: dequantized at load, float path.
  ConvNode c1 = make_conv(rng, "conv1", "input", 3, 8, 5, 1, 8, OutputSpec::Codes(2, 2.f));
  c1.out_scale.assign(8, 1.f);
  PoolNode mp{"maxpool", "conv1", true, 2, 2, 2, 2, 0, 0, {}};
  PoolNode ap{"avgpool", "maxpool", false, 3, 3, 1, 1, 1, 1, OutputSpec::Codes(3, 1.5f)};
  AffineNode af{"bn", "avgpool", test::random_floats(rng, 8, 0.5f, 2.f),
                test::random_floats(rng, 8, -0.5f, 0.5f), OutputSpec::Codes(4, 2.f)};
  ConvNode dw = make_conv(rng, "dw", "bn", 8, 8, 3, 1, 3, OutputSpec::Codes(4, 1.f), 8);
  FlattenNode fl{"flatten", "dw"};
  LinearNode fc;
  fc.name = "fc";
  fc.input = "flatten";
  fc.in_features = 8 * 6 * 6;
  fc.out_features = 5;
  fc.weight = WeightData::Codes(test::random_codes(rng, 5 * 288, 2), 2, 1.f);
  fc.out_scale = test::random_floats(rng, 5, 0.01f, 0.02f);
  fc.out_bias = test::random_floats(rng, 5, -0.1f, 0.1f);
  fc.output = OutputSpec::Float(FloatAct::kClip, 3.f);

  ModelWriter w;
  w.add(in);
  w.add(c1);
  w.add(mp);
  w.add(ap);
  w.add(af);
  w.add(dw);
  w.add(fl);
  w.add(fc);
  const auto bytes = w.serialize();
  Model m = Model::load_from_memory(bytes.data(), bytes.size(), "misc.pqm");
  m.set_threads(2);
  const auto pixels = test::random_floats(rng, 2 * 3 * 144, 0.f, 1.f);
  const auto out = m.run(pixels.data(), 2);
  for (int b = 0; b < 2; ++b) {
    std::map<std::string, TVal> v;
    v["input"] = naive_input(in, pixels.data() + b * 432);
    v["conv1"] = test::naive_conv(c1, v["input"], nullptr);
    v["maxpool"] = naive_pool(mp, v["conv1"]);
    v["avgpool"] = naive_pool(ap, v["maxpool"]);
    v["bn"] = naive_affine(af, v["avgpool"]);
    v["dw"] = test::naive_conv(dw, v["bn"], nullptr);
    v["flatten"] = naive_flatten(v["dw"]);
    v["fc"] = test::naive_conv(as_conv(fc), v["flatten"], nullptr);
    for (const std::string name : {"conv1", "maxpool", "avgpool", "bn", "dw", "flatten"}) {
      const NodeOutput o = m.debug_output(name, pixels.data(), 2);
      const TVal& t = v.at(name);
      ASSERT_EQ(o.channels * o.height * o.width, static_cast<int>(t.size())) << name;
      for (size_t i = 0; i < t.size(); ++i) {
        ASSERT_EQ(o.code_values[b * t.size() + i], t.a[i]) << name << " image " << b << " i " << i;
      }
    }
    expect_close(std::vector<float>(out.begin() + b * 5, out.begin() + (b + 1) * 5), v["fc"].f);
  }
}

TEST(Model, DescribeListsNodesAndBytes) {
  const ResNetLike net(1);
  const auto bytes = net.writer().serialize();
  Model m = Model::load_from_memory(bytes.data(), bytes.size(), "r.pqm");
  const std::string d = describe(m);
  for (const char* s : {"resnet_like", "conv1", "layer2.conv1", "residual(stride=2,pad_channels=4)",
                        "u4(alpha=2", "w=u4", "global_avg_pool", "linear", "weight bytes"}) {
    EXPECT_NE(d.find(s), std::string::npos) << s << "\n" << d;
  }
  EXPECT_EQ(m.file_bytes(), bytes.size());
  EXPECT_GT(m.weight_bytes(), 0u);
  EXPECT_EQ(m.node_names().size(), 8u);
  EXPECT_THROW(m.debug_output("nope", nullptr, 1), FormatError);
}

TEST(Writer, WriteIsAtomicAndHeaderAligned) {
  const ResNetLike net(2);
  const std::string path = temp_path("atomic");
  net.writer().write(path);
  std::ifstream f(path, std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::remove(path.c_str());
  ASSERT_GE(bytes.size(), 8u);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(bytes[i]) << (8 * i);
  EXPECT_EQ((8 + n) % 8, 0u);
  EXPECT_EQ(bytes[8], '{');
  // No temporary left behind.
  std::ifstream tmp(path + ".tmp." + std::to_string(::getpid()));
  EXPECT_FALSE(tmp.good());
}

TEST(Writer, RejectsInconsistentNodes) {
  ModelWriter w;
  w.add(InputNode{"input", 1, 4, 4, {0.f}, {1.f}});
  EXPECT_THROW(w.add(InputNode{"input", 1, 4, 4, {0.f}, {1.f}}), FormatError);
  ConvNode c;
  c.name = "c";
  c.input = "input";
  c.in_channels = 1;
  c.out_channels = 2;
  c.weight = WeightData::Codes({0, 1}, 2, 1.f);
  c.out_scale = {1.f};  // wrong size
  c.out_bias = {0.f, 0.f};
  EXPECT_THROW(w.add(c), FormatError);
  c.out_scale = {1.f, 1.f};
  c.weight = WeightData::Codes({0, 4}, 2, 1.f);  // code out of range
  EXPECT_THROW(w.add(c), FormatError);
  c.name = "c2";
  c.input = "missing";
  c.weight = WeightData::Codes({0, 3}, 2, 1.f);
  w.add(c);
  EXPECT_THROW(w.serialize(), FormatError);  // validation by loading catches the dangling input
}

}  // namespace
}  // namespace pactq::rt
