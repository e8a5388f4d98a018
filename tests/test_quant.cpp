// Quantization core: PACT, DoReFa, SAWB against independent implementations.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/autograd.h>

#include <cmath>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "pactq/common/torch_compat.h"
#include "pactq/quant/bits.h"
#include "pactq/quant/pact.h"
#include "pactq/quant/pact_kernel.h"
#include "pactq/quant/weight_quant.h"
#include "test_env.h"

using pactq::quant::PactImpl;

namespace {

// Straightforward PACT forward, element by element, written from the formula.
at::Tensor pact_forward_naive(const at::Tensor& x, float alpha, int bits) {
  at::Tensor y = at::empty_like(x);
  const float n = static_cast<float>((1 << bits) - 1);
  const float scale = n / alpha;
  const float step = alpha / n;
  const auto* in = x.data_ptr<float>();
  auto* out = y.data_ptr<float>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    float c = in[i] < 0.0f ? 0.0f : (in[i] > alpha ? alpha : in[i]);
    out[i] = bits >= 32 ? c : std::nearbyint(c * scale) * step;
  }
  return y;
}

// Inputs that hit every region, including the exact boundaries.
at::Tensor pact_input(float alpha, int64_t count = 4099) {
  at::manual_seed(7);
  at::Tensor x = at::rand({count}) * (1.6 * alpha) - 0.3 * alpha;
  auto* p = x.data_ptr<float>();
  p[0] = 0.0f;
  p[1] = alpha;
  p[2] = alpha * 2.0f;
  p[3] = -1.0f;
  p[4] = std::nextafter(alpha, 0.0f);
  return x;
}

// `value` converted to `options` (device, dtype) as a leaf that requires grad,
// so backward fills its grad(). `value.to(device)` of a tensor that requires
// grad is not that: it is the output of a copy node, a non-leaf whose grad()
// stays undefined. On the CPU `.to(kCPU)` returns `value` itself, so the
// mistake shows only on a GPU; GradLeaf.* checks this helper on the CPU through
// a dtype conversion, which is not a no-op there.
at::Tensor grad_leaf(const at::Tensor& value, const at::TensorOptions& options) {
  at::Tensor leaf = value.to(options).detach().requires_grad_(true);
  TORCH_CHECK(leaf.is_leaf() && leaf.requires_grad(), "grad_leaf: not a leaf that requires grad");
  return leaf;
}

// A PACT clip alpha on `device`, a leaf there (see grad_leaf).
at::Tensor alpha_tensor(float value, const at::Device& device = at::kCPU) {
  return grad_leaf(at::full({1}, value), at::TensorOptions(device));
}

struct PactGrads {
  at::Tensor y, grad_x, grad_alpha;
};

PactGrads run_pact(const at::Tensor& x_in, float alpha_value, int bits, PactImpl impl,
                   const at::Tensor& upstream) {
  // clone() keeps x_in's layout (channels_last stays so) and device.
  at::Tensor x = x_in.detach().clone().set_requires_grad(true);
  at::Tensor alpha = alpha_tensor(alpha_value, x.device());
  at::Tensor y = pactq::quant::pact(x, alpha, bits, impl);
  y.backward(upstream);
  return {y.detach(), x.grad(), alpha.grad()};
}

}  // namespace

TEST(GradLeaf, ConvertedTensorsAreLeavesThatReceiveTheirGradient) {
  // A conversion that copies on the CPU (float64 -> float32), of a tensor that
  // itself requires grad: what `alpha_tensor(v).to(gpu)` did on a GPU.
  const at::Tensor source = at::full({3}, 1.5, at::kDouble).requires_grad_(true);
  const at::Tensor leaf = grad_leaf(source, at::TensorOptions(at::kFloat));
  EXPECT_TRUE(leaf.is_leaf());
  EXPECT_TRUE(leaf.requires_grad());
  EXPECT_EQ(leaf.scalar_type(), at::kFloat);
  (leaf * 2).sum().backward();
  ASSERT_TRUE(leaf.grad().defined());
  EXPECT_TRUE(at::equal(leaf.grad(), at::full({3}, 2.0f)));
  EXPECT_FALSE(source.grad().defined());  // detached from `source`

  const at::Tensor alpha = alpha_tensor(2.0f, at::kCPU);
  EXPECT_TRUE(alpha.is_leaf());
  pactq::quant::pact(at::full({4}, 3.0f), alpha, 4).sum().backward();
  ASSERT_TRUE(alpha.grad().defined());
  EXPECT_EQ(alpha.grad().item<float>(), 4.0f);  // every element clipped
}

TEST(QuantBits, ParseAndCheck) {
  EXPECT_EQ(pactq::quant::parse_bits("4", "--wbits"), 4);
  EXPECT_EQ(pactq::quant::parse_bits("fp", "--wbits"), 32);
  EXPECT_THROW(pactq::quant::parse_bits("9", "--wbits"), std::invalid_argument);
  EXPECT_THROW(pactq::quant::parse_bits("0", "--wbits"), std::invalid_argument);
  EXPECT_THROW(pactq::quant::parse_bits("4x", "--wbits"), std::invalid_argument);
  try {
    pactq::quant::parse_bits("abc", "--abits");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("--abits"), std::string::npos);
  }
}

class PactAllBits : public ::testing::TestWithParam<int> {};

TEST_P(PactAllBits, ForwardMatchesNaiveAndHasTwoToTheKLevels) {
  const int bits = GetParam();
  const float alpha = 2.5f;
  const at::Tensor x = pact_input(alpha);
  const at::Tensor expected = pact_forward_naive(x, alpha, bits);
  for (PactImpl impl : {PactImpl::kFused, PactImpl::kComposite}) {
    at::NoGradGuard no_grad;
    const at::Tensor y = pactq::quant::pact(x, at::full({1}, alpha), bits, impl);
    EXPECT_TRUE(at::equal(y, expected)) << "bits " << bits;
    const float* yp = y.data_ptr<float>();
    EXPECT_EQ(yp[0], 0.0f);
    EXPECT_EQ(yp[1], alpha);
    EXPECT_EQ(yp[2], alpha);
    EXPECT_EQ(yp[3], 0.0f);
    if (bits < 32) {
      std::set<float> levels(yp, yp + y.numel());
      EXPECT_EQ(levels.size(), size_t{1} << bits);
      // every value is an integer multiple of alpha / n
      const at::Tensor codes = y * ((1 << bits) - 1) / alpha;
      EXPECT_TRUE(at::allclose(codes, at::round(codes), 0, 1e-4));
    }
  }
}

TEST_P(PactAllBits, BackwardFollowsThePaperFormula) {
  const int bits = GetParam();
  const float alpha = 1.75f;
  const at::Tensor x = pact_input(alpha);
  const at::Tensor upstream = at::randn_like(x);
  for (PactImpl impl : {PactImpl::kFused, PactImpl::kComposite}) {
    const PactGrads g = run_pact(x, alpha, bits, impl, upstream);
    const at::Tensor pass = (x >= 0).logical_and(x < alpha).to(at::kFloat);
    const at::Tensor clipped = (x >= alpha).to(at::kFloat);
    EXPECT_TRUE(at::equal(g.grad_x, upstream * pass));
    const double expected_alpha = (upstream * clipped).sum(at::kDouble).item<double>();
    EXPECT_NEAR(g.grad_alpha.item<double>(), expected_alpha, 1e-5 * (1 + std::abs(expected_alpha)));
    EXPECT_EQ(g.grad_alpha.sizes(), at::IntArrayRef({1}));
  }
}

INSTANTIATE_TEST_SUITE_P(Bits, PactAllBits, ::testing::Values(1, 2, 3, 4, 5, 6, 7, 8, 32));

TEST(QuantPact, FormulaCheckRejectsTheStePerRoundTrap) {
  // The trap: STE only around round, y = alpha/n * round_ste(clamp(x)*n/alpha),
  // adds a residual to dL/dalpha from elements below alpha. Our gradient must
  // equal the paper's formula, and the trap must measurably differ from it, so
  // the formula check above would catch an implementation that fell into it.
  const int bits = 2;
  const float alpha_value = 1.0f;
  // Values that all round down to code 0: the trap's residual -y/alpha piles up.
  at::manual_seed(9);
  const at::Tensor x =
      at::cat({at::rand({2000}) * (alpha_value / 8), at::full({10}, 2 * alpha_value)});
  const at::Tensor upstream = at::ones_like(x);
  const double formula = (upstream * (x >= alpha_value).to(at::kFloat)).sum().item<double>();

  at::Tensor alpha = alpha_tensor(alpha_value);
  const double n = 3.0;
  at::Tensor clipped = at::minimum(x.clamp_min(0), alpha);
  at::Tensor trap = alpha / n * pactq::quant::round_ste(clipped * n / alpha);
  trap.backward(upstream);
  const double trap_grad = alpha.grad().item<double>();

  const PactGrads ours = run_pact(x, alpha_value, bits, PactImpl::kAuto, upstream);
  EXPECT_NEAR(ours.grad_alpha.item<double>(), formula, 1e-3);
  EXPECT_GT(std::abs(trap_grad - formula), 1.0) << "the trap variant should differ";
}

TEST(QuantPact, FusedEqualsCompositeBitForBit) {
  at::manual_seed(3);
  // Whole 32k-element chunks, a partial last chunk whose length is not a
  // multiple of the 4-element mask byte or the 8-lane vector, and tiny tensors.
  const std::vector<std::vector<int64_t>> shapes = {{128, 16, 8, 8}, {3, 43691}, {7}, {1}};
  for (const auto& shape : shapes) {
    at::Tensor x = at::randn(shape) * 3;
    // Values exactly at the region boundaries.
    x.view({-1})[0] = 0.0f;
    if (x.numel() > 2) {
      x.view({-1})[1] = 2.0f;
      x.view({-1})[x.numel() - 1] = 2.0f;
    }
    const at::Tensor upstream = at::randn_like(x);
    for (int bits : {2, 4, 8, 32}) {
      const PactGrads fused = run_pact(x, 2.0f, bits, PactImpl::kFused, upstream);
      const PactGrads composite = run_pact(x, 2.0f, bits, PactImpl::kComposite, upstream);
      EXPECT_TRUE(at::equal(fused.y, composite.y)) << bits << " " << x.sizes();
      EXPECT_TRUE(at::equal(fused.grad_x, composite.grad_x)) << bits << " " << x.sizes();
      // The alpha gradient is a sum: both accumulate in double, in different orders.
      const double a = fused.grad_alpha.item<double>();
      const double b = composite.grad_alpha.item<double>();
      EXPECT_NEAR(a, b, 1e-6 * (1 + std::abs(b))) << bits << " " << x.sizes();
    }
  }
}

// Equal, with NaN equal to NaN (at::equal says NaN != NaN).
bool same_values(const at::Tensor& a, const at::Tensor& b) {
  if (!at::equal(at::isnan(a), at::isnan(b))) return false;
  return at::equal(at::nan_to_num(a, 0.0), at::nan_to_num(b, 0.0));
}

TEST(QuantPact, FusedEqualsCompositeOnNonFiniteInputs) {
  // A diverging layer's NaN must reach the loss on both paths (the fused
  // kernel once turned it into 0); +-Inf clip like any large value.
  at::manual_seed(4);
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t count : {int64_t{37}, int64_t{70001}}) {  // SIMD body and scalar tail
    at::Tensor x = at::randn({count}) * 3;
    auto* p = x.data_ptr<float>();
    for (int64_t i : {int64_t{0}, int64_t{9}, count / 2, count - 1}) p[i] = nan;
    for (int64_t i : {int64_t{1}, int64_t{10}, count - 2}) p[i] = inf;
    for (int64_t i : {int64_t{2}, int64_t{11}, count - 3}) p[i] = -inf;
    const at::Tensor upstream = at::randn_like(x);
    for (int bits : {2, 4, 8, 32}) {
      const PactGrads fused = run_pact(x, 2.0f, bits, PactImpl::kFused, upstream);
      const PactGrads composite = run_pact(x, 2.0f, bits, PactImpl::kComposite, upstream);
      EXPECT_TRUE(same_values(fused.y, composite.y)) << bits << " " << count;
      EXPECT_TRUE(same_values(fused.grad_x, composite.grad_x)) << bits << " " << count;
      EXPECT_TRUE(at::isnan(fused.y[0]).item<bool>()) << "NaN must stay NaN, bits " << bits;
      EXPECT_TRUE(at::isnan(fused.y[count / 2]).item<bool>()) << bits;
      EXPECT_EQ(fused.y[1].item<float>(), 2.0f) << "+Inf clips to alpha";
      EXPECT_EQ(fused.y[2].item<float>(), 0.0f) << "-Inf clips to 0";
      EXPECT_EQ(fused.grad_x[0].item<float>(), 0.0f) << "a NaN passes no gradient";
      const double a = fused.grad_alpha.item<double>();
      const double b = composite.grad_alpha.item<double>();
      EXPECT_NEAR(a, b, 1e-6 * (1 + std::abs(b))) << bits;
    }
  }
}

TEST(QuantPact, BackwardOnNonContiguousAndChannelsLastInputs) {
  // The fused path packs its mask in logical (NCHW) order: its backward must
  // read the upstream gradient in that order whatever the layouts.
  at::manual_seed(8);
  const at::Tensor dense = at::randn({4, 6, 5, 3}) * 2;
  const at::Tensor upstream_dense = at::randn({4, 6, 5, 3});
  const PactGrads want = run_pact(dense, 1.5f, 3, PactImpl::kComposite, upstream_dense);
  const auto cl = at::MemoryFormat::ChannelsLast;
  struct Case {
    const char* name;
    at::Tensor x, upstream;
  };
  const std::vector<Case> cases = {
      {"channels_last input", dense.contiguous(cl), upstream_dense},
      {"channels_last input and gradient", dense.contiguous(cl), upstream_dense.contiguous(cl)},
      {"channels_last gradient", dense, upstream_dense.contiguous(cl)},
      {"transposed input", dense.transpose(1, 3).contiguous().transpose(1, 3), upstream_dense},
      {"transposed gradient", dense, upstream_dense.transpose(0, 2).contiguous().transpose(0, 2)},
  };
  for (const Case& c : cases) {
    ASSERT_TRUE(at::equal(c.x, dense) && at::equal(c.upstream, upstream_dense)) << c.name;
    ASSERT_FALSE(c.x.is_contiguous() && c.upstream.is_contiguous()) << c.name;
    for (PactImpl impl : {PactImpl::kFused, PactImpl::kComposite}) {
      const PactGrads got = run_pact(c.x, 1.5f, 3, impl, c.upstream);
      EXPECT_TRUE(at::equal(got.y, want.y)) << c.name;
      EXPECT_TRUE(at::equal(got.grad_x, want.grad_x)) << c.name;
      EXPECT_NEAR(got.grad_alpha.item<double>(), want.grad_alpha.item<double>(), 1e-4) << c.name;
    }
  }
}

TEST(QuantPactCuda, FusedCudaEqualsTheCpuKernelBitForBit) {
  // Runs where a CUDA device is visible (scripts/device-check --remote). In a
  // build with pact_cuda.cu the CUDA tensors take the fused CUDA kernels, else
  // the composite; either way the CPU fused kernel is the reference.
  if (pactq::compat::cuda_device_count() == 0) PACTQ_SKIP_HARDWARE("no CUDA device");
  const at::Device gpu(at::kCUDA, 0);
  const at::Tensor probe = at::zeros({8}, at::TensorOptions(gpu));
  EXPECT_EQ(pactq::quant::pact_fused_eligible(probe, alpha_tensor(1.0f, gpu)),
            pactq::quant::pact_cuda_kernels_built());
  at::manual_seed(11);
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const auto cl = at::MemoryFormat::ChannelsLast;
  struct Case {
    std::string name;
    at::Tensor x, upstream;  // on the CPU
  };
  std::vector<Case> cases;
  for (int64_t count : {int64_t{1}, int64_t{7}, int64_t{8}, int64_t{37}, int64_t{70001}}) {
    at::Tensor x = at::randn({count}) * 3;
    auto* p = x.data_ptr<float>();
    for (int64_t i : {int64_t{0}, count / 2}) p[i] = 2.0f;  // exactly alpha
    if (count > 7) {
      p[1] = nan, p[2] = inf, p[3] = -inf, p[4] = 0.0f, p[count - 1] = nan;
      p[5] = 0.25f, p[6] = 0.75f;  // ties of the 2-bit grid (step 2/3 is not, 0.25 at 8 bits)
    }
    cases.push_back({"flat " + std::to_string(count), x, at::randn_like(x)});
  }
  const at::Tensor act = at::randn({16, 24, 9, 9}) * 2;
  cases.push_back({"channels_last", act.contiguous(cl), at::randn_like(act).contiguous(cl)});
  cases.push_back(
      {"channels_last input, contiguous gradient", act.contiguous(cl), at::randn_like(act)});
  cases.push_back({"transposed", act.transpose(1, 3), at::randn_like(act).transpose(1, 3)});
  for (const Case& c : cases) {
    for (int bits : {2, 4, 8, 32}) {
      const PactGrads want = run_pact(c.x, 2.0f, bits, PactImpl::kFused, c.upstream);
      const PactGrads got = run_pact(c.x.to(gpu), 2.0f, bits, PactImpl::kAuto, c.upstream.to(gpu));
      EXPECT_TRUE(same_values(got.y.cpu(), want.y)) << c.name << ", bits " << bits;
      EXPECT_TRUE(same_values(got.grad_x.cpu(), want.grad_x)) << c.name << ", bits " << bits;
      EXPECT_EQ(got.y.suggest_memory_format(), c.x.suggest_memory_format()) << c.name;
      const double a = got.grad_alpha.cpu().item<double>();
      const double b = want.grad_alpha.item<double>();
      EXPECT_NEAR(a, b, 1e-6 * (1 + std::abs(b))) << c.name << ", bits " << bits;
    }
  }
  // A contiguous view 4 bytes past an allocation: the kernels' scalar loads.
  const at::Tensor big = at::randn({4099}) * 2;
  const at::Tensor upstream = at::randn({4098});
  auto view_grads = [&](const at::Device& device) {
    at::Tensor leaf = big.to(device).detach().clone().requires_grad_(true);
    at::Tensor alpha = alpha_tensor(2.0f, device);
    const at::Tensor view = leaf.narrow(0, 1, 4098);
    at::Tensor y = pactq::quant::pact(view, alpha, 4);
    y.backward(upstream.to(device));
    return PactGrads{y.detach().cpu(), leaf.grad().cpu(), alpha.grad().cpu()};
  };
  const PactGrads want = view_grads(at::kCPU);
  const PactGrads got = view_grads(gpu);
  EXPECT_TRUE(at::equal(got.y, want.y));
  EXPECT_TRUE(at::equal(got.grad_x, want.grad_x));
  EXPECT_NEAR(got.grad_alpha.item<double>(), want.grad_alpha.item<double>(), 1e-6 * 4098);
}

TEST(QuantPactKernels, Avx2EqualsScalarIncludingThePackedMask) {
#if defined(__x86_64__)
  namespace k = pactq::quant::kernels;
  const k::PactKernelSet* avx2 = k::pact_kernel_set(pactq::Isa::kAvx2);
  if (avx2 == nullptr) PACTQ_SKIP_HARDWARE("no AVX2");
  at::manual_seed(11);
  const int64_t n = 1003;  // not a multiple of 4 or 8
  at::Tensor x = at::randn({n}) * 3;
  x[5] = 0.0f;
  x[6] = 1.5f;
  x[7] = -0.0f;
  x[9] = std::nanf("");
  const at::Tensor g = at::randn({n});
  std::vector<float> y1(n), y2(n), gx1(n), gx2(n);
  std::vector<uint8_t> m1(k::pact_mask_bytes(n), 0xff), m2(k::pact_mask_bytes(n), 0xee);
  k::PactForwardArgs a{x.data_ptr<float>(), y1.data(), m1.data(), 1.5f, 10.0f, 0.15f, true};
  k::pact_forward_scalar(a, 0, n);
  a.y = y2.data();
  a.mask = m2.data();
  avx2->forward(a, 0, n);
  EXPECT_EQ(m1, m2);
  for (int64_t i = 0; i < n; ++i) {
    if (i == 9) {  // NaN stays NaN on both
      EXPECT_TRUE(std::isnan(y1[i]) && std::isnan(y2[i])) << y1[i] << " " << y2[i];
      continue;
    }
    EXPECT_EQ(y1[i], y2[i]) << i;
  }
  // The regions as documented: per group of 8, a byte of "passes" bits and a
  // byte of "clipped" bits; region = (x >= 0) + (x >= alpha).
  const float* xp = x.data_ptr<float>();
  for (int64_t i = 0; i < n; ++i) {
    const int want = (xp[i] >= 0.0f) + (xp[i] >= 1.5f);
    const int pass = (m1[2 * (i / 8)] >> (i % 8)) & 1;
    const int clipped = (m1[2 * (i / 8) + 1] >> (i % 8)) & 1;
    EXPECT_EQ(pass + 2 * clipped, want) << i;
  }
  const double s1 = k::pact_backward_scalar(g.data_ptr<float>(), m1.data(), gx1.data(), 0, n);
  const double s2 = avx2->backward(g.data_ptr<float>(), m1.data(), gx2.data(), 0, n);
  EXPECT_EQ(gx1, gx2);
  EXPECT_NEAR(s1, s2, 1e-9 * (1 + std::abs(s1)));
#else
  PACTQ_SKIP_HARDWARE("x86-64 only");
#endif
}

TEST(QuantPact, NonContiguousAndDoubleInputs) {
  at::manual_seed(5);
  const at::Tensor base = at::randn({8, 6, 5}) * 2;
  const at::Tensor x = base.transpose(0, 2);  // not contiguous
  at::NoGradGuard no_grad;
  const at::Tensor alpha = at::full({1}, 1.5f);
  const at::Tensor y = pactq::quant::pact(x, alpha, 3);
  EXPECT_TRUE(at::equal(y, pact_forward_naive(x.contiguous(), 1.5f, 3)));
  const at::Tensor yd = pactq::quant::pact(x.to(at::kDouble), alpha.to(at::kDouble), 3);
  EXPECT_TRUE(at::allclose(yd.to(at::kFloat), y, 0, 1e-6));
}

TEST(QuantPact, RejectsBadArguments) {
  const at::Tensor x = at::randn({4});
  EXPECT_THROW(pactq::quant::pact(x, at::ones({2}), 4), std::invalid_argument);
  // alpha = 0 gives NaN outputs; alpha < 0 makes the paths' masks disagree.
  for (float bad : {0.0f, -1.0f, std::numeric_limits<float>::quiet_NaN(),
                    std::numeric_limits<float>::infinity()}) {
    for (PactImpl impl : {PactImpl::kAuto, PactImpl::kFused, PactImpl::kComposite}) {
      EXPECT_THROW(pactq::quant::pact(x, at::full({1}, bad), 4, impl), std::invalid_argument)
          << bad;
    }
    EXPECT_THROW(pactq::quant::pact(x, at::full({1}, bad), 32), std::invalid_argument) << bad;
  }
  EXPECT_THROW(pactq::quant::pact(x, at::ones({1}), 9), std::invalid_argument);
  EXPECT_THROW(pactq::quant::pact(x.to(at::kDouble), at::ones({1}), 4, PactImpl::kFused),
               std::invalid_argument);
}

namespace {
// DoReFa written independently from PACT.md section 2.
at::Tensor dorefa_naive(const at::Tensor& w, int bits) {
  const double n = std::pow(2.0, bits) - 1;
  at::Tensor t = at::tanh(w.to(at::kDouble));
  at::Tensor u = t / (2 * t.abs().max()) + 0.5;
  return (2 * at::round(u * n) / n - 1).to(at::kFloat);
}
}  // namespace

TEST(QuantDoReFa, CodesLieOnTheOddGrid) {
  at::manual_seed(11);
  const at::Tensor w = at::randn({32, 16, 3, 3}) * 0.2;
  for (int bits = 2; bits <= 8; ++bits) {
    at::NoGradGuard no_grad;
    const at::Tensor wq =
        pactq::quant::quantize_weight(w, bits, pactq::quant::WeightQuantKind::kDoReFa);
    const double n = std::pow(2.0, bits) - 1;
    EXPECT_TRUE(at::allclose(wq, dorefa_naive(w, bits), 0, 1e-6)) << bits;
    const at::Tensor q = (wq.to(at::kDouble) * n + n) / 2;  // codes 0..n
    EXPECT_TRUE(at::allclose(q, at::round(q), 0, 1e-4)) << bits;
    EXPECT_GE(q.min().item<double>(), -1e-6);
    EXPECT_LE(q.max().item<double>(), n + 1e-6);
    EXPECT_FLOAT_EQ(wq.abs().max().item<float>(), 1.0f);  // max |t| maps to +-1
    std::set<float> levels(wq.data_ptr<float>(), wq.data_ptr<float>() + wq.numel());
    EXPECT_LE(levels.size(), size_t{1} << bits);
    const pactq::quant::WeightCodes codes =
        pactq::quant::weight_codes(w, bits, pactq::quant::WeightQuantKind::kDoReFa);
    EXPECT_TRUE(at::allclose(pactq::quant::dequantize(codes), wq, 0, 1e-6)) << bits;
  }
}

TEST(QuantDoReFa, GradientIsTheFormulaDerivativeWithSteRound) {
  at::manual_seed(12);
  const at::Tensor w0 = at::randn({64}) * 0.3;
  const at::Tensor upstream = at::randn({64});
  at::Tensor w = w0.clone().set_requires_grad(true);
  pactq::quant::quantize_weight(w, 4, pactq::quant::WeightQuantKind::kDoReFa).backward(upstream);
  // d/dw of 2 * (tanh(w) / (2 max|tanh w|) + 1/2) - 1 = tanh(w) / max|tanh(w)|
  at::Tensor w2 = w0.clone().set_requires_grad(true);
  const at::Tensor t = at::tanh(w2);
  (t / t.abs().max()).backward(upstream);
  EXPECT_TRUE(at::allclose(w.grad(), w2.grad(), 1e-5, 1e-6));
}

TEST(QuantDoReFa, FusedCpuPathMatchesTheComposite) {
  at::manual_seed(21);
  for (int bits : {2, 3, 4, 8}) {
    for (const auto& shape : std::vector<std::vector<int64_t>>{{64, 16, 3, 3}, {10, 64}, {1}}) {
      at::Tensor w0 = at::randn(shape) * 0.4;
      if (w0.numel() > 3) {  // two elements share the max |w|, one with each sign
        const float big = w0.abs().max().item<float>() + 0.5f;
        w0.view({-1})[0] = big;
        w0.view({-1})[2] = -big;
      }
      const at::Tensor up = at::randn(shape);
      at::Tensor wf = w0.clone().set_requires_grad(true);
      at::Tensor wc = w0.clone().set_requires_grad(true);
      const at::Tensor yf =
          pactq::quant::quantize_weight(wf, bits, pactq::quant::WeightQuantKind::kDoReFa);
      const at::Tensor yc = pactq::quant::quantize_weight_composite(wc, bits);
      // Same grid; a code may differ only where (t / 2m + 1/2) n lands within
      // rounding error of a half-integer (the ops are the same, the ATen
      // composite may divide by multiplying with a reciprocal).
      const double same = yf.eq(yc).to(at::kDouble).mean().item<double>();
      EXPECT_GE(same, 0.999) << bits;
      EXPECT_LE((yf - yc).abs().max().item<double>(), 2.0 / ((1 << bits) - 1) + 1e-6) << bits;
      yf.backward(up);
      yc.backward(up);
      EXPECT_TRUE(at::allclose(wf.grad(), wc.grad(), 1e-4, 1e-6))
          << bits << " max diff " << (wf.grad() - wc.grad()).abs().max().item<double>();
    }
  }
}

TEST(QuantWeightCuda, FusedKernelsMatchTheCpu) {
  // Runs where a CUDA device is visible (scripts/device-check --remote): in a
  // build with the CUDA kernels, DoReFa and SAWB on CUDA take the fused
  // kernels (weight_quant_cuda.cu), else the composite. The reference is the
  // CPU path (fused DoReFa, composite SAWB). tanh and the moments are computed
  // by other code on the two devices, so a code may differ by one step where
  // the value lands within an ulp of a rounding tie; nowhere by more.
  if (pactq::compat::cuda_device_count() == 0) PACTQ_SKIP_HARDWARE("no CUDA device");
  using pactq::quant::WeightQuantKind;
  const at::Device gpu(at::kCUDA, 0);
  at::manual_seed(23);
  struct Case {
    std::string name;
    at::Tensor w;
  };
  std::vector<Case> cases;
  for (const auto& shape : std::vector<std::vector<int64_t>>{
           {7}, {16, 16, 3, 3}, {64, 64, 3, 3}, {512, 512, 3, 3}, {10, 64}}) {
    at::Tensor w = at::randn(shape) * 0.1;
    if (w.numel() > 3) {  // two elements share the max |w|, one with each sign
      const float big = w.abs().max().item<float>() + 0.05f;
      w.view({-1})[0] = big;
      w.view({-1})[2] = -big;
    }
    cases.push_back({"shape of " + std::to_string(w.numel()), w});
  }
  cases.push_back({"channels_last",
                   (at::randn({32, 16, 3, 3}) * 0.2).contiguous(at::MemoryFormat::ChannelsLast)});
  cases.push_back({"zeros", at::zeros({16, 8, 3, 3})});
  for (WeightQuantKind kind : {WeightQuantKind::kDoReFa, WeightQuantKind::kSawb}) {
    for (int bits : {2, 4, 8}) {
      for (const Case& c : cases) {
        const std::string what =
            pactq::quant::to_string(kind) + " " + std::to_string(bits) + " bits, " + c.name;
        const at::Tensor up = at::randn(c.w.sizes());
        at::Tensor w_cpu = c.w.clone().set_requires_grad(true);
        at::Tensor w_gpu = c.w.to(gpu).detach().clone().set_requires_grad(true);
        const at::Tensor y_cpu = pactq::quant::quantize_weight(w_cpu, bits, kind);
        const at::Tensor y_gpu = pactq::quant::quantize_weight(w_gpu, bits, kind);
        y_cpu.backward(up);
        y_gpu.backward(up.to(gpu));
        const at::Tensor y = y_gpu.detach().cpu();
        EXPECT_EQ(y_gpu.suggest_memory_format(), c.w.suggest_memory_format()) << what;
        // One step of the grid: 2 / n on DoReFa's, 2 a / n on SAWB's (a <= max|w|).
        const double step = 2.0 / ((1 << bits) - 1) *
                            (kind == WeightQuantKind::kSawb ? c.w.abs().max().item<double>() : 1);
        const double same = y.eq(y_cpu).to(at::kDouble).mean().item<double>();
        EXPECT_GE(same, c.w.numel() < 100 ? 0.85 : 0.999) << what;
        EXPECT_LE((y - y_cpu).abs().max().item<double>(), step * 1.001 + 1e-6) << what;
        EXPECT_TRUE(at::allclose(w_gpu.grad().cpu(), w_cpu.grad(), 1e-4, 1e-6))
            << what << ", max gradient difference "
            << (w_gpu.grad().cpu() - w_cpu.grad()).abs().max().item<double>();
      }
      // A diverged layer turns NaN on the GPU as on the CPU.
      at::Tensor bad = at::randn({64}) * 0.1;
      bad[5] = std::numeric_limits<float>::quiet_NaN();
      const at::Tensor y = pactq::quant::quantize_weight(bad.to(gpu), bits, kind).cpu();
      const at::Tensor want = pactq::quant::quantize_weight(bad, bits, kind);
      EXPECT_EQ(at::isnan(y).sum().item<int64_t>(), at::isnan(want).sum().item<int64_t>())
          << pactq::quant::to_string(kind) << " " << bits << " bits, NaN weight";
    }
  }
}

TEST(QuantDoReFa, ExportCodesAreTheTrainedValues) {
  at::manual_seed(22);
  const at::Tensor w = at::randn({32, 16, 3, 3}) * 0.3;
  for (int bits : {2, 4, 8}) {
    at::NoGradGuard no_grad;
    const at::Tensor wq =
        pactq::quant::quantize_weight(w, bits, pactq::quant::WeightQuantKind::kDoReFa);
    const auto codes = pactq::quant::weight_codes(w, bits, pactq::quant::WeightQuantKind::kDoReFa);
    const double n = (1 << bits) - 1;
    const at::Tensor trained_codes = at::round((wq.to(at::kDouble) + 1) * n / 2);
    EXPECT_TRUE(at::equal(codes.codes.to(at::kDouble), trained_codes)) << bits;
    EXPECT_TRUE(at::allclose(pactq::quant::dequantize(codes), wq, 0, 1e-6)) << bits;
    // And against PACT.md's formula, computed here element by element in
    // double: the same code wherever u * n is not within float rounding of a
    // tie (there the float rule may round either way).
    const at::Tensor wd = w.to(at::kDouble).contiguous();
    const double* wp = wd.data_ptr<double>();
    double max_t = 0;
    for (int64_t i = 0; i < wd.numel(); ++i) max_t = std::max(max_t, std::abs(std::tanh(wp[i])));
    const at::Tensor got = codes.codes.to(at::kInt).contiguous();
    const int* gp = got.data_ptr<int>();
    int64_t checked = 0;
    for (int64_t i = 0; i < wd.numel(); ++i) {
      const double un = (std::tanh(wp[i]) / (2 * max_t) + 0.5) * n;
      const double frac = un - std::floor(un);
      if (std::abs(frac - 0.5) < 1e-4) continue;
      ASSERT_EQ(gp[i], static_cast<int>(std::lround(un))) << "bits " << bits << " element " << i;
      ++checked;
    }
    EXPECT_GT(checked, wd.numel() * 99 / 100) << bits;
  }
}

TEST(QuantDoReFa, NanWeightsGiveNanOnBothPathsAndNoCodes) {
  // The fused max once skipped a NaN (std::max), leaving the layer finite but
  // for one weight; the composite's at::max makes the whole layer NaN.
  at::Tensor w = at::randn({8, 4, 3, 3}) * 0.3;
  w.view({-1})[5] = std::numeric_limits<float>::quiet_NaN();
  for (int bits : {2, 4}) {
    at::NoGradGuard no_grad;
    const at::Tensor fused =
        pactq::quant::quantize_weight(w, bits, pactq::quant::WeightQuantKind::kDoReFa);
    const at::Tensor composite = pactq::quant::quantize_weight_composite(w, bits);
    EXPECT_TRUE(at::isnan(composite).all().item<bool>()) << bits;
    EXPECT_TRUE(at::isnan(fused).all().item<bool>()) << bits;
    for (auto kind :
         {pactq::quant::WeightQuantKind::kDoReFa, pactq::quant::WeightQuantKind::kSawb}) {
      EXPECT_THROW(pactq::quant::weight_codes(w, bits, kind), std::invalid_argument) << bits;
    }
  }
}

TEST(QuantDoReFa, OneBitIsSignTimesMeanAbs) {
  const at::Tensor w = at::tensor({-0.5f, 0.25f, 0.0f, 1.25f});
  at::Tensor wv = w.clone().set_requires_grad(true);
  const at::Tensor wq =
      pactq::quant::quantize_weight(wv, 1, pactq::quant::WeightQuantKind::kDoReFa);
  const float m = 0.5f;  // mean |w|
  EXPECT_TRUE(at::allclose(wq, at::tensor({-m, m, m, m})));
  wq.sum().backward();
  EXPECT_TRUE(at::equal(wv.grad(), at::ones({4})));  // straight-through
}

TEST(QuantSawb, ClipFollowsTheFitAndGridIsSymmetric) {
  at::manual_seed(13);
  const at::Tensor w = at::randn({4096}) * 0.1;
  for (int bits : {2, 3, 4, 5, 8}) {
    const auto [c1, c2] = pactq::quant::sawb_coefficients(bits);
    const double a =
        c1 * std::sqrt(w.square().mean().item<double>()) - c2 * w.abs().mean().item<double>();
    at::Tensor wv = w.clone().set_requires_grad(true);
    const at::Tensor wq =
        pactq::quant::quantize_weight(wv, bits, pactq::quant::WeightQuantKind::kSawb);
    const double n = std::pow(2.0, bits) - 1;
    EXPECT_LE(wq.abs().max().item<double>(), a * (1 + 1e-6)) << bits;
    if (bits <= 4) {
      EXPECT_NEAR(wq.abs().max().item<double>(), a, 1e-5 * a) << bits;  // clipped
    }
    const at::Tensor q = (wq.detach().to(at::kDouble) / a * n + n) / 2;
    EXPECT_TRUE(at::allclose(q, at::round(q), 0, 1e-3)) << bits;
    // symmetric: the grid has no zero level and is its own negative
    std::set<float> levels(wq.data_ptr<float>(), wq.data_ptr<float>() + wq.numel());
    EXPECT_EQ(levels.count(0.0f), 0u);
    EXPECT_LE(levels.size(), size_t{1} << bits);
    wq.backward(at::ones_like(w) * 3);
    EXPECT_TRUE(at::equal(wv.grad(), at::ones_like(w) * 3)) << "straight-through";
    const auto codes = pactq::quant::weight_codes(w, bits, pactq::quant::WeightQuantKind::kSawb);
    EXPECT_NEAR(codes.scale, a, 1e-5 * a);
    EXPECT_TRUE(at::allclose(pactq::quant::dequantize(codes), wq.detach(), 1e-5, 1e-6));
  }
  EXPECT_THROW(pactq::quant::quantize_weight(w, 1, pactq::quant::WeightQuantKind::kSawb),
               std::invalid_argument);
}

TEST(QuantSawb, DegenerateWeightsStayFinite) {
  const at::Tensor w = at::full({16}, 0.3f);  // a = (c1 - c2) * 0.3 < 0 at 4 bits
  const at::Tensor wq = pactq::quant::quantize_weight(w, 4, pactq::quant::WeightQuantKind::kSawb);
  EXPECT_TRUE(at::isfinite(wq).all().item<bool>());
  const at::Tensor zeros =
      pactq::quant::quantize_weight(at::zeros({8}), 4, pactq::quant::WeightQuantKind::kDoReFa);
  EXPECT_TRUE(at::isfinite(zeros).all().item<bool>());
}
