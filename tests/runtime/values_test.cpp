// The element-wise and pooling families (affine, add, max pool) of every ISA
// set against the scalar reference in kernels/ref/ops.cpp, bit for bit: codes
// and float inputs, codes and float outputs with each activation, channel
// counts that leave vector tails, padded pooling windows, and the awkward
// floats (exact rounding ties, negatives, infinities, NaN).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "../skip.h"
#include "pactq/runtime/kernels/kernels.h"

namespace pactq::rt {
namespace {

namespace k = kernels;

class ValuesIsa : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    set_ = k::kernel_set(GetParam() == "avx2" ? Isa::kAvx2 : Isa::kAvx512Vnni);
    if (!set_) PACTQ_SKIP_HARDWARE(GetParam() << " kernel set not available on this CPU/build");
  }
  const k::KernelSet* set_ = nullptr;
};
INSTANTIATE_TEST_SUITE_P(Variants, ValuesIsa, ::testing::Values("avx2", "avx512vnni"),
                         [](const auto& info) { return info.param; });

// Random floats with the values that trip vector code: exact requant ties
// (k + 0.5 steps), zero, negatives, both infinities and NaN.
std::vector<float> awkward_floats(size_t n, float step, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-2.f, 6.f);
  std::uniform_int_distribution<int> pick(0, 9);
  std::vector<float> v(n);
  for (float& x : v) {
    switch (pick(rng)) {
      case 0:
        x = (static_cast<float>(pick(rng)) + 0.5f) * step;
        break;
      case 1:
        x = 0.f;
        break;
      case 2:
        x = -std::numeric_limits<float>::infinity();
        break;
      case 3:
        x = std::numeric_limits<float>::quiet_NaN();
        break;
      case 4:
        x = std::numeric_limits<float>::infinity();
        break;
      default:
        x = u(rng);
    }
  }
  return v;
}

// An input of n values: codes (0..2^bits-1, scale `step`) or awkward floats.
struct Input {
  std::vector<uint8_t> codes;
  std::vector<float> floats;
  k::TensorRef ref;
};
Input make_input(size_t n, bool codes, int bits, float step, std::mt19937& rng) {
  Input in;
  if (codes) {
    std::uniform_int_distribution<int> c(0, (1 << bits) - 1);
    in.codes.resize(n + 64);  // kernels may read 8 bytes at the last vector
    for (size_t i = 0; i < n; ++i) in.codes[i] = static_cast<uint8_t>(c(rng));
    in.ref = {in.codes.data(), true, step};
  } else {
    in.floats = awkward_floats(n, step, rng);
    in.ref = {in.floats.data(), false, 1.f};
  }
  return in;
}

// The outputs to try: codes at 2, 4 and 8 bits, and float with no
// activation, ReLU and clip.
std::vector<k::OutputRef> outputs() {
  std::vector<k::OutputRef> v;
  for (int bits : {2, 4, 8}) {
    k::OutputRef o;
    o.codes = true;
    o.n_out = (1 << bits) - 1;
    o.inv = static_cast<float>(o.n_out) / 3.f;  // alpha 3: ties at (k + 0.5) * 3 / n
    v.push_back(o);
  }
  for (FloatAct act : {FloatAct::kNone, FloatAct::kRelu, FloatAct::kClip}) {
    k::OutputRef o;
    o.act = act;
    o.alpha = 2.5f;
    v.push_back(o);
  }
  return v;
}

// Runs the reference and the variant into two zeroed buffers and compares
// them byte for byte (a float NaN matches any NaN: x86 leaves which operand's
// payload survives to the instruction's operand order), past the end too.
template <class Ref, class Variant>
void expect_same_bytes(size_t n, const k::OutputRef& o, Ref&& ref, Variant&& variant,
                       const std::string& what) {
  const size_t bytes = n * (o.codes ? 1 : 4);
  std::vector<uint8_t> a(bytes + 64, 0), b(bytes + 64, 0);
  k::OutputRef oa = o, ob = o;
  oa.data = a.data();
  ob.data = b.data();
  ref(oa);
  variant(ob);
  for (size_t i = 0; i < bytes + 64; ++i) {
    if (!o.codes && i < bytes && i % 4 == 0) {
      float fa, fb;
      std::memcpy(&fa, &a[i], 4);
      std::memcpy(&fb, &b[i], 4);
      if (std::isnan(fa) && std::isnan(fb)) {
        i += 3;
        continue;
      }
    }
    ASSERT_EQ(int{a[i]}, int{b[i]})
        << what << ": byte " << i << " of " << bytes << (i >= bytes ? " (past the end)" : "");
  }
}

TEST_P(ValuesIsa, AffineMatchesReference) {
  std::mt19937 rng(21);
  for (int c : {1, 7, 8, 13, 64, 67}) {
    for (bool codes_in : {true, false}) {
      const size_t pixels = 5;
      const size_t n = pixels * c;
      const Input x = make_input(n, codes_in, 4, 0.2f, rng);
      std::vector<float> scale = awkward_floats(c, 0.25f, rng), bias = awkward_floats(c, 0.5f, rng);
      for (int i = 0; i < c; i += 3) scale[i] = 1.5f;  // some plain channels too
      for (const k::OutputRef& o : outputs()) {
        const std::string what = "affine c=" + std::to_string(c) +
                                 (codes_in ? " codes" : " float") +
                                 (o.codes ? " -> codes n=" + std::to_string(o.n_out)
                                          : " -> float act=" + std::to_string(int(o.act)));
        expect_same_bytes(
            n, o,
            [&](const k::OutputRef& out) {
              k::affine_values(pixels, c, x.ref, scale.data(), bias.data(), out);
            },
            [&](const k::OutputRef& out) {
              set_->affine(pixels, c, x.ref, scale.data(), bias.data(), out);
            },
            what);
        if (HasFatalFailure()) return;
      }
    }
  }
}

TEST_P(ValuesIsa, AddMatchesReference) {
  std::mt19937 rng(22);
  for (size_t n : {1u, 7u, 8u, 9u, 64u, 203u}) {
    for (int kinds = 0; kinds < 4; ++kinds) {
      const Input a = make_input(n, kinds & 1, 4, 0.2f, rng);
      const Input b = make_input(n, kinds & 2, 2, 0.5f, rng);
      for (const k::OutputRef& o : outputs()) {
        const std::string what = "add n=" + std::to_string(n) + " kinds=" + std::to_string(kinds) +
                                 (o.codes ? " -> codes" : " -> float");
        expect_same_bytes(
            n, o, [&](const k::OutputRef& out) { k::add_values(n, a.ref, b.ref, out); },
            [&](const k::OutputRef& out) { set_->add(n, a.ref, b.ref, out); }, what);
        if (HasFatalFailure()) return;
      }
    }
  }
}

TEST_P(ValuesIsa, MaxPoolMatchesReference) {
  std::mt19937 rng(23);
  struct Case {
    int h, w, c, k, s, p;
  };
  // ImageNet stem pooling (3x3/2 pad 1), 2x2/2, channel tails under 8 and 32.
  for (const Case& cs : {Case{9, 9, 64, 3, 2, 1}, Case{8, 6, 37, 2, 2, 0}, Case{5, 7, 3, 3, 1, 1},
                         Case{6, 6, 40, 3, 2, 0}, Case{4, 4, 9, 3, 3, 1}}) {
    k::PoolGeom g{};
    g.in_h = cs.h;
    g.in_w = cs.w;
    g.c = cs.c;
    g.kh = g.kw = cs.k;
    g.sh = g.sw = cs.s;
    g.ph = g.pw = cs.p;
    g.out_h = (cs.h + 2 * cs.p - cs.k) / cs.s + 1;
    g.out_w = (cs.w + 2 * cs.p - cs.k) / cs.s + 1;
    const size_t n_in = static_cast<size_t>(cs.h) * cs.w * cs.c;
    const size_t n_out = static_cast<size_t>(g.out_h) * g.out_w * cs.c;
    for (bool codes : {true, false}) {
      const Input x = make_input(n_in, codes, 8, 0.1f, rng);
      const void* in = x.ref.data;
      k::OutputRef o;
      o.codes = codes;
      const std::string what = "max_pool " + std::to_string(cs.h) + "x" + std::to_string(cs.w) +
                               "x" + std::to_string(cs.c) + " k" + std::to_string(cs.k) + " s" +
                               std::to_string(cs.s) + " p" + std::to_string(cs.p) +
                               (codes ? " codes" : " float");
      expect_same_bytes(
          n_out, o,
          [&](const k::OutputRef& out) { k::max_pool_rows(g, in, codes, out.data, 0, g.out_h); },
          [&](const k::OutputRef& out) { set_->max_pool(g, in, codes, out.data, 0, g.out_h); },
          what);
      if (HasFatalFailure()) return;
    }
  }
}

// The reference set is the reference functions themselves.
TEST(ValuesRef, ReferenceSetUsesTheReferenceFunctions) {
  const k::KernelSet* ref = k::kernel_set(Isa::kRef);
  ASSERT_NE(ref, nullptr);
  EXPECT_EQ(ref->affine, &k::affine_values);
  EXPECT_EQ(ref->add, &k::add_values);
  EXPECT_EQ(ref->max_pool, &k::max_pool_rows);
}

}  // namespace
}  // namespace pactq::rt
