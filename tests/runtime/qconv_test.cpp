// Quantized conv kernels: the scalar reference against the naive NCHW formula,
// and every ISA variant against the reference (bit-exact), XNNPACK-tester style.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "../skip.h"
#include "pactq/runtime/kernels/amx/qconv_amx.h"
#include "pactq/runtime/kernels/avx2/qconv_lut_avx2.h"  // the AVX2 modes a case must reach
#include "pactq/runtime/kernels/kernels.h"
#include "test_util.h"

namespace pactq::rt {
namespace {

namespace k = kernels;

// One random conv case, built fluently.
struct ConvCase {
  int in_c = 8, out_c = 8, h = 6, w = 7, kh = 3, kw = 3, sh = 1, sw = 1, ph = 1, pw = 1, groups = 1;
  int wbits = 4, abits = 4;
  bool residual = false, res_codes = true;
  int res_stride = 1, res_pad = 0;
  OutputSpec out = OutputSpec::Codes(4, 3.f);
  uint32_t seed = 1;
  // Worst case for the kernels' narrow accumulators instead of random codes:
  // every activation at a_max and every weight at an extreme, +n_w (q = n_w)
  // on even output channels and -n_w (q = 0) on odd ones, so partial sums grow
  // as fast as they can in both directions.
  bool worst_case = false;

  std::string str() const {
    std::ostringstream s;
    s << "cin=" << in_c << " cout=" << out_c << " hw=" << h << "x" << w << " k=" << kh << "x" << kw
      << " s=" << sh << "," << sw << " p=" << ph << "," << pw << " g=" << groups << " w" << wbits
      << "a" << abits << " res=" << residual << (res_codes ? "c" : "f") << res_stride << "/"
      << res_pad << " out=" << (out.codes ? "codes" : "float") << out.bits << " seed=" << seed
      << (worst_case ? " worst-case" : "");
    return s.str();
  }
};

// Runs `kernel` over the whole image for the case; returns the NHWC output
// bytes. Also fills the NCHW naive result when `naive` is non-null.
struct Built {
  ConvNode node;
  test::TVal x, res;
  std::vector<uint8_t> x_nhwc, res_nhwc;
  k::ConvGeom g;
};

Built build(const ConvCase& cc) {
  std::mt19937 rng(cc.seed);
  Built b;
  ConvNode& n = b.node;
  n.in_channels = cc.in_c;
  n.out_channels = cc.out_c;
  n.kernel_h = cc.kh;
  n.kernel_w = cc.kw;
  n.stride_h = cc.sh;
  n.stride_w = cc.sw;
  n.pad_h = cc.ph;
  n.pad_w = cc.pw;
  n.groups = cc.groups;
  const size_t wcount = static_cast<size_t>(cc.out_c) * (cc.in_c / cc.groups) * cc.kh * cc.kw;
  const int na = (1 << cc.abits) - 1, nw = (1 << cc.wbits) - 1;
  std::vector<uint8_t> wcodes;
  if (cc.worst_case) {
    const size_t per_oc = wcount / cc.out_c;
    for (int oc = 0; oc < cc.out_c; ++oc)
      wcodes.insert(wcodes.end(), per_oc, static_cast<uint8_t>(oc % 2 == 0 ? nw : 0));
  } else {
    wcodes = test::random_codes(rng, wcount, cc.wbits);
  }
  n.weight = WeightData::Codes(std::move(wcodes), cc.wbits, 1.f);
  // Scales chosen so that outputs spread over the code range.
  const float typical = std::sqrt(static_cast<float>(wcount / cc.out_c)) * na * nw * 0.5f + 1.f;
  n.out_scale = test::random_floats(rng, cc.out_c, 0.5f / typical, 4.f / typical);
  n.out_bias = test::random_floats(rng, cc.out_c, -1.f, 2.f);
  n.output = cc.out;
  b.x.c = cc.in_c;
  b.x.h = cc.h;
  b.x.w = cc.w;
  b.x.codes = true;
  b.x.bits = cc.abits;
  b.x.alpha = 2.f;
  if (cc.worst_case) {
    b.x.a.assign(b.x.size(), na);
  } else {
    const auto xa = test::random_codes(rng, b.x.size(), cc.abits);
    b.x.a.assign(xa.begin(), xa.end());
  }
  b.x_nhwc.assign(b.x.size() + 64, 0xEE);  // slack filled with garbage on purpose
  for (int c = 0; c < cc.in_c; ++c)
    for (int i = 0; i < cc.h; ++i)
      for (int j = 0; j < cc.w; ++j)
        b.x_nhwc[(static_cast<size_t>(i) * cc.w + j) * cc.in_c + c] =
            static_cast<uint8_t>(b.x.a[b.x.at(c, i, j)]);
  k::ConvGeom& g = b.g;
  g.in_h = cc.h;
  g.in_w = cc.w;
  g.in_c = cc.in_c;
  g.kh = cc.kh;
  g.kw = cc.kw;
  g.sh = cc.sh;
  g.sw = cc.sw;
  g.ph = cc.ph;
  g.pw = cc.pw;
  g.groups = cc.groups;
  g.cin_g = cc.in_c / cc.groups;
  g.cout_g = cc.out_c / cc.groups;
  g.out_c = cc.out_c;
  g.out_h = (cc.h + 2 * cc.ph - cc.kh) / cc.sh + 1;
  g.out_w = (cc.w + 2 * cc.pw - cc.kw) / cc.sw + 1;
  if (cc.residual) {
    n.residual.input = "r";
    n.residual.stride = cc.res_stride;
    n.residual.pad_channels = cc.res_pad;
    test::TVal& r = b.res;
    r.c = cc.out_c - 2 * cc.res_pad;
    r.h = g.out_h * cc.res_stride;
    r.w = g.out_w * cc.res_stride;
    r.codes = cc.res_codes;
    r.bits = 3;
    r.alpha = 1.5f;
    b.res_nhwc.assign(r.size() * 4 + 64, 0);
    if (r.codes) {
      const auto ra = test::random_codes(rng, r.size(), 3);
      r.a.assign(ra.begin(), ra.end());
    } else {
      r.f = test::random_floats(rng, r.size(), -1.f, 1.f);
    }
    for (int c = 0; c < r.c; ++c)
      for (int i = 0; i < r.h; ++i)
        for (int j = 0; j < r.w; ++j) {
          const size_t d = (static_cast<size_t>(i) * r.w + j) * r.c + c;
          if (r.codes) {
            b.res_nhwc[d] = static_cast<uint8_t>(r.a[r.at(c, i, j)]);
          } else {
            std::memcpy(&b.res_nhwc[d * 4], &r.f[r.at(c, i, j)], 4);
          }
        }
  }
  return b;
}

k::Epilogue epilogue_of(const ConvCase& cc, const Built& b) {
  k::Epilogue e;
  e.scale = b.node.out_scale.data();
  e.bias = b.node.out_bias.data();
  e.out_codes = cc.out.codes;
  if (cc.out.codes) {
    e.n_out = (1 << cc.out.bits) - 1;
    e.inv = static_cast<float>(e.n_out) / cc.out.alpha;
  }
  e.act = cc.out.act;
  e.alpha = cc.out.alpha;
  if (cc.residual) {
    e.res = b.res_nhwc.data();
    e.res_codes = b.res.codes;
    e.res_scale = b.res.codes ? b.res.scale() : 1.f;
    e.res_h = b.res.h;
    e.res_w = b.res.w;
    e.res_c = b.res.c;
    e.res_stride = cc.res_stride;
    e.res_pad = cc.res_pad;
  }
  return e;
}

std::vector<uint8_t> run_kernel(const k::QConvKernel& kern, const ConvCase& cc, const Built& b,
                                int row_split) {
  k::PackedQConv p;
  kern.pack(b.g, b.node.weight.codes.data(), cc.wbits, (1 << cc.abits) - 1, &p);
  const k::Epilogue e = epilogue_of(cc, b);
  const size_t n = static_cast<size_t>(b.g.out_h) * b.g.out_w * b.g.out_c;
  std::vector<uint8_t> out(n * (cc.out.codes ? 1 : 4) + 64, 0xCD);
  // Split rows into chunks to exercise partial-row calls.
  for (int oh = 0; oh < b.g.out_h; oh += row_split)
    kern.run_rows(p, p.g, b.x_nhwc.data(), e, out.data(), oh, std::min(b.g.out_h, oh + row_split));
  out.resize(n * (cc.out.codes ? 1 : 4));
  return out;
}

void expect_matches_naive(const ConvCase& cc) {
  const Built b = build(cc);
  const auto got = run_kernel(k::qconv_ref_kernel(), cc, b, 1);
  const test::TVal want = test::naive_conv(b.node, b.x, cc.residual ? &b.res : nullptr);
  for (int c = 0; c < want.c; ++c)
    for (int i = 0; i < want.h; ++i)
      for (int j = 0; j < want.w; ++j) {
        const size_t d = (static_cast<size_t>(i) * want.w + j) * want.c + c;
        if (cc.out.codes) {
          ASSERT_EQ(got[d], want.a[want.at(c, i, j)])
              << cc.str() << " at " << c << "," << i << "," << j;
        } else {
          float v;
          std::memcpy(&v, &got[d * 4], 4);
          ASSERT_EQ(v, want.f[want.at(c, i, j)]) << cc.str() << " at " << c << "," << i << "," << j;
        }
      }
}

TEST(QConvRef, MatchesNaiveFormula) {
  uint32_t seed = 100;
  for (int wbits = 1; wbits <= 8; ++wbits)
    for (int abits : {1, 2, 4, 8}) {
      ConvCase cc;
      cc.wbits = wbits;
      cc.abits = abits;
      cc.seed = seed++;
      expect_matches_naive(cc);
      cc.out = OutputSpec::Float(FloatAct::kClip, 1.5f);
      cc.sh = cc.sw = 2;
      cc.residual = true;
      cc.res_pad = 2;
      cc.res_stride = 2;
      expect_matches_naive(cc);
    }
}

TEST(QConvRef, GroupsPaddingStrideResidual) {
  ConvCase cc;
  cc.in_c = 6;
  cc.out_c = 9;
  cc.groups = 3;
  cc.kh = 5;
  cc.kw = 3;
  cc.ph = 2;
  cc.pw = 0;
  cc.sh = 2;
  cc.residual = true;
  cc.res_codes = false;
  expect_matches_naive(cc);
  cc.residual = false;
  cc.in_c = cc.out_c = 5;
  cc.groups = 5;  // depthwise
  cc.out = OutputSpec::Float(FloatAct::kRelu);
  expect_matches_naive(cc);
}

// The ISA a test parameter names ("avx2", "avx512vnni", "amx").
Isa isa_named(const std::string& name) {
  for (Isa isa : {Isa::kAvx2, Isa::kAvx512Vnni, Isa::kAmx})
    if (name == isa_name(isa)) return isa;
  return Isa::kRef;
}

// Every ISA variant of the quantized conv against the reference, bit for bit.
// Variants the CPU lacks are skipped (and named), never silently passed.
class QConvIsa : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const k::KernelSet* set = k::kernel_set(isa_named(GetParam()));
    kern_ = set ? set->qconv : nullptr;
    if (!kern_) PACTQ_SKIP_HARDWARE(GetParam() << " kernel not available on this CPU/build");
  }
  void check(const ConvCase& cc) {
    const Built b = build(cc);
    const auto want = run_kernel(k::qconv_ref_kernel(), cc, b, 1);
    const auto got = run_kernel(*kern_, cc, b, 3);
    ASSERT_EQ(got.size(), want.size());
    if (cc.out.codes) {
      for (size_t i = 0; i < got.size(); ++i)
        ASSERT_EQ(int{got[i]}, int{want[i]}) << kern_->name << " " << cc.str() << " code " << i;
      return;
    }
    for (size_t i = 0; i < got.size(); i += 4) {
      float g, w;
      std::memcpy(&g, &got[i], 4);
      std::memcpy(&w, &want[i], 4);
      ASSERT_EQ(g, w) << kern_->name << " " << cc.str() << " value " << i / 4;
    }
  }
  // The case reaches the packing mode it is written for.
  void expect_mode(const ConvCase& cc, int mode) {
    const Built b = build(cc);
    k::PackedQConv p;
    kern_->pack(b.g, b.node.weight.codes.data(), cc.wbits, (1 << cc.abits) - 1, &p);
    ASSERT_EQ(p.mode, mode) << kern_->name << " " << cc.str();
  }
  const k::QConvKernel* kern_ = nullptr;
};
INSTANTIATE_TEST_SUITE_P(Variants, QConvIsa, ::testing::Values("avx2", "avx512vnni", "amx"),
                         [](const auto& info) { return info.param; });

// A linear layer: a 1x1 kernel on a 1x1 image.
ConvCase linear_case(int in_c, int out_c, int wbits, int abits, bool codes, uint32_t seed) {
  ConvCase cc;
  cc.in_c = in_c;
  cc.out_c = out_c;
  cc.h = cc.w = 1;
  cc.kh = cc.kw = 1;
  cc.ph = cc.pw = 0;
  cc.wbits = wbits;
  cc.abits = abits;
  cc.seed = seed;
  cc.out = codes ? OutputSpec::Codes(4, 40.f) : OutputSpec::Float();
  return cc;
}

// Linear layers (a 1x1 image): the VNNI kernel runs them as one pixel with
// four 16-channel blocks at a time, then single blocks; widths that leave a
// partial block and a remainder, K with a quad tail, both weight operand modes.
TEST_P(QConvIsa, LinearLayersOnePixel) {
  uint32_t seed = 3000;
  for (int out_c : {64, 80, 100, 7})
    for (int wbits : {4, 8})
      for (bool codes : {true, false}) check(linear_case(70, out_c, wbits, 4, codes, seed++));
}

// A linear layer over a batch, as the runtime runs it (conv_ops.cpp): the
// images' inputs side by side as one row (geometry in_w = out_w = n), each
// weight loaded once for a block of images. Every image's output must be the
// one it gets alone, bit for bit, with the reference and with this ISA, for
// rows that fill, straddle and miss the kernels' pixel blocks, both output
// kinds and the weight operand modes (2-bit with >= 64 channels: the AVX2
// table-lookup path).
TEST_P(QConvIsa, LinearLayerOverABatchRow) {
  uint32_t seed = 5000;
  for (int wbits : {2, 4, 8})
    for (int out_c : {100, 7})
      for (bool codes : {true, false}) {
        const ConvCase cc = linear_case(72, out_c, wbits, wbits == 2 ? 2 : 4, codes, seed++);
        const Built b = build(cc);
        const k::Epilogue e = epilogue_of(cc, b);
        const size_t out_bytes = static_cast<size_t>(out_c) * (codes ? 1 : 4);
        std::mt19937 rng(cc.seed);
        for (const k::QConvKernel* kern : {&k::qconv_ref_kernel(), kern_}) {
          k::PackedQConv p;
          kern->pack(b.g, b.node.weight.codes.data(), cc.wbits, (1 << cc.abits) - 1, &p);
          for (int n : {2, 5, 8, 16, 19}) {
            const auto x = test::random_codes(rng, static_cast<size_t>(n) * cc.in_c, cc.abits);
            std::vector<uint8_t> row(x.begin(), x.end());
            row.resize(row.size() + 64, 0);
            k::ConvGeom g = p.g;
            g.in_w = g.out_w = n;
            std::vector<uint8_t> got(n * out_bytes + 64, 0xCD);
            kern->run_rows(p, g, row.data(), e, got.data(), 0, 1);
            for (int i = 0; i < n; ++i) {
              std::vector<uint8_t> one(row.begin() + i * cc.in_c, row.begin() + (i + 1) * cc.in_c);
              one.resize(one.size() + 64, 0);
              std::vector<uint8_t> want(out_bytes + 64, 0xCD);
              kern->run_rows(p, p.g, one.data(), e, want.data(), 0, 1);
              ASSERT_EQ(0, std::memcmp(got.data() + i * out_bytes, want.data(), out_bytes))
                  << kern->name << " " << cc.str() << " image " << i << " of " << n;
            }
            EXPECT_EQ(got[n * out_bytes], 0xCD) << "wrote past the row";
          }
        }
      }
}

// Rows of 7 and 14 pixels (ImageNet nets' last stages): the VNNI kernel takes
// 7-pixel blocks there; two 16-channel blocks and a partial one.
TEST_P(QConvIsa, SevenPixelRows) {
  uint32_t seed = 4000;
  for (int w : {7, 14})
    for (int wbits : {3, 8}) {
      ConvCase cc;
      cc.in_c = 24;
      cc.out_c = 40;
      cc.h = 3;
      cc.w = w;
      cc.wbits = wbits;
      cc.seed = seed++;
      cc.residual = true;
      check(cc);
    }
}

TEST_P(QConvIsa, EveryBitWidthPair) {
  uint32_t seed = 1000;
  for (int wbits = 1; wbits <= 8; ++wbits)
    for (int abits = 1; abits <= 8; ++abits) {
      ConvCase cc;
      cc.wbits = wbits;
      cc.abits = abits;
      cc.in_c = 19;  // not a multiple of 4; 3 taps x 5 quads
      cc.out_c = 13;
      cc.h = 5;
      cc.w = 9;
      cc.seed = seed++;
      cc.out = OutputSpec::Codes(abits, 2.5f);
      check(cc);
    }
}

TEST_P(QConvIsa, LongKForcesInt16Flushes) {
  // Worst-case codes for every bit pair, with K long enough that an int16
  // accumulator (AVX2 mode 1: one pair sum of at most 2 a_max n_w per quad and
  // lane) would overflow twice over without its flushes. Two shapes reach both
  // flush sites of the AVX2 kernel: 3x3 (flush between taps) and 1x1 with more
  // quads than one flush interval (flush inside the tap); cin % 4 == 3 keeps a
  // padded K lane (and VNNI mode 2's tail ones vector) in play. Float output
  // keeps the accumulator visible (codes would saturate).
  for (int wbits = 1; wbits <= 8; ++wbits)
    for (int abits = 1; abits <= 8; ++abits) {
      const long pair_max = 2L * ((1 << abits) - 1) * ((1 << wbits) - 1);
      const long quads_per_flush = std::max(1L, 32767 / pair_max);
      const long quads = 2 * (quads_per_flush + 1);
      ASSERT_GT(quads * pair_max, 2 * 32767L);  // the case can overflow int16
      for (int k : {3, 1}) {
        ConvCase cc;
        cc.worst_case = true;
        cc.wbits = wbits;
        cc.abits = abits;
        cc.kh = cc.kw = k;
        cc.ph = cc.pw = k / 2;
        cc.in_c = static_cast<int>(4 * ((quads + k * k - 1) / (k * k)) - 1);
        cc.out_c = 24;          // a 16-channel and an 8-channel block (AVX2: NB = 2 and 1)
        cc.h = k == 3 ? 3 : 2;  // 3x3: the centre row sees all 9 taps
        cc.w = k == 3 ? 6 : 5;  // a full pixel block and a partial one
        cc.out = OutputSpec::Float();
        check(cc);
        if (HasFatalFailure()) return;
      }
    }
}

// The AVX2 kernel with its table-lookup mode taken wherever it applies,
// whatever the CPU prefers (pack and run: the AVX2 kernel's run_rows runs
// either mode).
void pack_lookup_forced(const k::ConvGeom& g, const uint8_t* codes, int wbits, int a_max,
                        k::PackedQConv* p) {
  if (k::lut_applicable(g, wbits, a_max)) return k::lut_pack(g, codes, wbits, a_max, p);
  k::kernel_set(Isa::kAvx2)->qconv->pack(g, codes, wbits, a_max, p);
}

TEST_P(QConvIsa, LowBitTableLookupPath) {
  // AVX2 computes 1-2 bit weights with 1-2 bit activations (>= 64 input and
  // >= 32 output channels per group, an even count) by table lookup on CPUs where it pays
  // (lut_pays_on_this_cpu); the lookup is tested on every AVX2 CPU through a kernel that forces
  // it. Byte accumulators flushed to uint16 every 255 / (2 n_w a_max) channel pairs, uint16
  // flushed to int32 when K n_w a_max > 65535. Worst-case codes with K past the uint16 limit
  // (3x3 and 1x1), then random codes with groups, stride 2, residuals and a partial 16-channel
  // block.
  if (GetParam() == "avx2") {
    // The CPU's own choice first: the lookup exactly where it pays.
    ConvCase cc;
    cc.wbits = cc.abits = 2;
    cc.in_c = 64;
    cc.out_c = 32;
    expect_mode(cc, k::lut_pays_on_this_cpu() ? k::kQConvModeLut : 1);
    if (HasFatalFailure()) return;
    static const k::QConvKernel forced{"avx2 lookup forced", pack_lookup_forced, kern_->run_rows};
    kern_ = &forced;
  }
  for (int wbits = 1; wbits <= 2; ++wbits)
    for (int abits = 1; abits <= 2; ++abits) {
      const int n_w = (1 << wbits) - 1, a_max = (1 << abits) - 1;
      const int k_min = 65535 / (n_w * a_max) + 1;  // K where uint16 overflows once
      for (int k : {3, 1}) {
        ConvCase cc;
        cc.worst_case = true;
        cc.wbits = wbits;
        cc.abits = abits;
        cc.kh = cc.kw = k;
        cc.ph = cc.pw = k / 2;
        cc.in_c = 2 * ((2 * k_min / (k * k) + 1) / 2 + 1);  // even, K about twice k_min
        cc.out_c = 40;  // two 16-channel blocks (NB = 2) and a partial one
        cc.h = k == 3 ? 3 : 1;
        cc.w = k == 3 ? 6 : 5;
        cc.out = OutputSpec::Float();
        if (GetParam() == "avx2") expect_mode(cc, k::kQConvModeLut);
        check(cc);
        if (HasFatalFailure()) return;
      }
      uint32_t seed = 700 + 10 * wbits + abits;
      for (int groups : {1, 2})
        for (int stride : {1, 2}) {
          ConvCase cc;
          cc.wbits = wbits;
          cc.abits = abits;
          cc.groups = groups;
          cc.in_c = 66 * groups;
          cc.out_c = 40 * groups;
          cc.h = 7;
          cc.w = 11;
          cc.sh = cc.sw = stride;
          cc.residual = stride == 1;
          cc.seed = seed++;
          cc.out = OutputSpec::Codes(abits, 2.f);
          if (GetParam() == "avx2") expect_mode(cc, k::kQConvModeLut);
          check(cc);
          if (HasFatalFailure()) return;
        }
    }
}

TEST_P(QConvIsa, WideRowsAndFewChannels) {
  // Rows of >= 16 outputs with <= 16 channels take the kernels' longest pixel
  // blocks (with a partial last block and padding at both row ends).
  uint32_t seed = 300;
  for (int bits : {1, 2, 4, 7, 8})
    for (int stride : {1, 2}) {
      ConvCase cc;
      cc.wbits = cc.abits = bits;
      cc.in_c = bits == 8 ? 6 : 16;
      cc.out_c = bits % 2 ? 11 : 16;
      cc.h = 5;
      cc.w = stride == 1 ? 37 : 45;
      cc.sh = cc.sw = stride;
      cc.seed = seed++;
      cc.out = bits == 4 ? OutputSpec::Float() : OutputSpec::Codes(bits, 3.f);
      check(cc);
    }
}

TEST_P(QConvIsa, TileShapesRowsChunksAndChannelBlocks) {
  // The shapes the AMX kernel blocks differently: 16-channel layers (4 pixel
  // blocks x 1 channel block, spanning output rows), several channel blocks
  // with an odd count (2 x 2 with a padding block), one pixel block (1 x 4),
  // kernel rows of K bytes that end inside a 64-byte chunk or span several,
  // stride 2, a partial last pixel block, and worst-case codes at 7 bits
  // (the widest weights the tiles take). Every variant runs them; the AMX one
  // must reach its tile packing for each.
  struct Shape {
    int in_c, out_c, h, w, k, stride;
  };
  const Shape shapes[] = {
      {16, 16, 6, 32, 3, 1},  // ResNet20 stage 1: K run 48 bytes, one chunk
      {16, 32, 8, 32, 3, 2},  // stage 1 -> 2
      {64, 64, 4, 8, 3, 1},   // stage 3: 3 chunks per kernel row, 4 channel blocks
      {24, 40, 3, 37, 3, 1},  // 72-byte runs (2 chunks), 3 channel blocks, partial pixel block
      {3, 20, 5, 20, 5, 1},   // 15-byte runs, not a multiple of 4
      {64, 48, 3, 17, 1, 1},  // 1x1
      {40, 72, 1, 9, 3, 1},   // one pixel block, 5 channel blocks
  };
  uint32_t seed = 700;
  for (const Shape& sh : shapes)
    for (int bits : {2, 4, 7})
      for (bool worst : {false, true}) {
        ConvCase cc;
        cc.in_c = sh.in_c;
        cc.out_c = sh.out_c;
        cc.h = sh.h;
        cc.w = sh.w;
        cc.kh = cc.kw = sh.k;
        cc.ph = cc.pw = sh.k / 2;
        cc.sh = cc.sw = sh.stride;
        cc.wbits = bits;
        cc.abits = worst ? 8 : bits;
        cc.worst_case = worst;
        cc.seed = seed++;
        cc.out = worst ? OutputSpec::Float() : OutputSpec::Codes(bits, 3.f);
        if (sh.out_c % 2 == 0 && !worst) {
          cc.residual = true;  // the epilogue's residual on tile rows
          cc.res_codes = bits != 4;
        }
        if (GetParam() == "amx") expect_mode(cc, k::kQConvModeAmx);
        check(cc);
        if (HasFatalFailure()) return;
      }
  // What the tiles do not serve falls back to the VNNI modes, still exact.
  if (GetParam() == "amx") {
    // Weights past a core's L2 (> 2 MiB): channel block outermost, 4 x 1.
    ConvCase big;
    big.in_c = 2048;
    big.out_c = 1040;
    big.h = 3;  // one call (the test runs 3 rows a call): 6 pixel blocks
    big.w = 32;
    big.kh = big.kw = 1;
    big.ph = big.pw = 0;
    big.seed = 790;
    big.out = OutputSpec::Float();
    expect_mode(big, k::kQConvModeAmx);
    check(big);
    ConvCase grouped;
    grouped.in_c = grouped.out_c = 8;
    grouped.groups = 2;
    expect_mode(grouped, 1);
    ConvCase w8;
    w8.wbits = 8;
    expect_mode(w8, 2);
  }
}

TEST_P(QConvIsa, RandomShapes) {
  std::mt19937 rng(42);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int it = 0; it < 300; ++it) {
    ConvCase cc;
    cc.groups = pick(0, 3) == 0 ? pick(2, 3) : 1;
    cc.in_c = cc.groups * pick(1, 12);
    cc.out_c = cc.groups * pick(1, 20);
    static const int ks[] = {1, 3, 5, 11};
    cc.kh = ks[pick(0, 3)];
    cc.kw = pick(0, 4) == 0 ? ks[pick(0, 3)] : cc.kh;
    cc.ph = pick(0, cc.kh / 2);
    cc.pw = pick(0, cc.kw / 2);
    cc.h = pick(std::max(1, cc.kh - 2 * cc.ph), 13);
    cc.w = pick(std::max(1, cc.kw - 2 * cc.pw), 13);
    cc.sh = pick(1, 3);
    cc.sw = pick(1, 2);
    cc.wbits = pick(1, 8);
    cc.abits = pick(1, 8);
    switch (pick(0, 3)) {
      case 0:
        cc.out = OutputSpec::Float();
        break;
      case 1:
        cc.out = OutputSpec::Float(FloatAct::kRelu);
        break;
      case 2:
        cc.out = OutputSpec::Float(FloatAct::kClip, 0.7f);
        break;
      default:
        cc.out = OutputSpec::Codes(pick(1, 8), 0.5f + pick(0, 40) * 0.1f);
        break;
    }
    if (cc.out_c % 2 == 0 && pick(0, 2) == 0) {
      cc.residual = true;
      cc.res_codes = pick(0, 1);
      cc.res_stride = pick(1, 2);
      cc.res_pad = pick(0, cc.out_c / 2 - 1 < 0 ? 0 : cc.out_c / 4);
    }
    cc.seed = static_cast<uint32_t>(5000 + it);
    check(cc);
    if (HasFatalFailure()) return;
  }
}

// The variant's float conv and the scalar reference on the same packed
// weights, input and epilogue: the output bytes must be identical.
void expect_fconv_matches_reference(const k::KernelSet& set, const k::ConvGeom& g,
                                    const std::vector<float>& weights, const void* x, bool codes_in,
                                    float in_scale, const k::Epilogue& e, const std::string& what) {
  k::PackedFConv p;
  k::fconv_pack(g, weights.data(), &p);
  const size_t n_out = static_cast<size_t>(g.out_h) * g.out_w * g.out_c * 4;
  std::vector<uint8_t> a(n_out, 0), b(n_out, 0);
  k::fconv_rows_ref(p, x, codes_in, in_scale, e, a.data(), 0, g.out_h);
  set.fconv(p, x, codes_in, in_scale, e, b.data(), 0, g.out_h);
  ASSERT_EQ(a, b) << what;
}

class FConvIsa : public ::testing::TestWithParam<std::string> {};
INSTANTIATE_TEST_SUITE_P(Variants, FConvIsa, ::testing::Values("avx2", "avx512"),
                         [](const auto& info) { return info.param; });

TEST_P(FConvIsa, MatchesReferenceBitExactly) {
  const k::KernelSet* set = k::kernel_set(GetParam() == "avx2" ? Isa::kAvx2 : Isa::kAvx512Vnni);
  if (!set) PACTQ_SKIP_HARDWARE(GetParam() << " not available");
  std::mt19937 rng(9);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int it = 0; it < 100; ++it) {
    k::ConvGeom g;
    g.groups = pick(1, 2);
    g.cin_g = pick(1, 9);
    g.cout_g = pick(1, 37);
    g.in_c = g.cin_g * g.groups;
    g.out_c = g.cout_g * g.groups;
    g.kh = g.kw = 2 * pick(0, 2) + 1;
    g.ph = g.pw = pick(0, g.kh / 2);
    g.sh = g.sw = pick(1, 2);
    g.in_h = pick(g.kh, 9);
    g.in_w = pick(g.kw, 9);
    g.out_h = (g.in_h + 2 * g.ph - g.kh) / g.sh + 1;
    g.out_w = (g.in_w + 2 * g.pw - g.kw) / g.sw + 1;
    const auto w =
        test::random_floats(rng, static_cast<size_t>(g.out_c) * g.cin_g * g.kh * g.kw, -1.f, 1.f);
    const bool codes_in = it % 2;
    const size_t n_in = static_cast<size_t>(g.in_h) * g.in_w * g.in_c;
    const auto xf = test::random_floats(rng, n_in, -2.f, 2.f);
    const auto xc = test::random_codes(rng, n_in, 4);
    const auto scale = test::random_floats(rng, g.out_c, 0.5f, 2.f);
    const auto bias = test::random_floats(rng, g.out_c, -1.f, 1.f);
    k::Epilogue e;
    e.scale = scale.data();
    e.bias = bias.data();
    e.out_codes = it % 3 == 0;
    e.n_out = 15;
    e.inv = 15.f / 3.f;
    e.act = it % 4 == 1 ? FloatAct::kClip : FloatAct::kRelu;
    e.alpha = 1.5f;
    // A same-shape residual on every other iteration, as codes or floats.
    const size_t n_res = static_cast<size_t>(g.out_h) * g.out_w * g.out_c;
    const auto res_f = test::random_floats(rng, n_res, -1.f, 1.f);
    const auto res_c = test::random_codes(rng, n_res, 4);
    if (it % 2 == 0) {
      e.res_codes = it % 4 == 0;
      e.res = e.res_codes ? static_cast<const void*>(res_c.data()) : res_f.data();
      e.res_scale = 0.3f;
      e.res_h = g.out_h;
      e.res_w = g.out_w;
      e.res_c = g.out_c;
    }
    const void* x = codes_in ? static_cast<const void*>(xc.data()) : xf.data();
    expect_fconv_matches_reference(*set, g, w, x, codes_in, 0.2f, e,
                                   "iteration " + std::to_string(it));
    if (HasFatalFailure()) return;
  }
}

TEST_P(FConvIsa, FirstConvShapesBitExactly) {
  // Image-net style first convs (3 channels, wide kernels and strides) on rows
  // wide enough for interior pixel blocks, whose kernel rows the SIMD bodies
  // run as one contiguous (tap, channel) loop; also with groups (the per-tap
  // path) and with code input.
  const k::KernelSet* set = k::kernel_set(GetParam() == "avx2" ? Isa::kAvx2 : Isa::kAvx512Vnni);
  if (!set) PACTQ_SKIP_HARDWARE(GetParam() << " not available");
  std::mt19937 rng(17);
  struct S {
    int cin, cout, k, s, p, h, w, groups;
  };
  const S shapes[] = {{3, 64, 7, 2, 3, 29, 31, 1},
                      {3, 96, 11, 4, 2, 47, 47, 1},
                      {3, 16, 3, 1, 1, 20, 21, 1},
                      {4, 12, 5, 1, 2, 13, 18, 2},
                      {4, 80, 3, 1, 1, 11, 14, 2}};  // wide blocks, a partial one, groups
  int it = 0;
  for (const S& sh : shapes)
    for (bool codes_in : {false, true}) {
      k::ConvGeom g;
      g.groups = sh.groups;
      g.cin_g = sh.cin / sh.groups;
      g.cout_g = sh.cout / sh.groups;
      g.in_c = sh.cin;
      g.out_c = sh.cout;
      g.kh = g.kw = sh.k;
      g.sh = g.sw = sh.s;
      g.ph = g.pw = sh.p;
      g.in_h = sh.h;
      g.in_w = sh.w;
      g.out_h = (g.in_h + 2 * g.ph - g.kh) / g.sh + 1;
      g.out_w = (g.in_w + 2 * g.pw - g.kw) / g.sw + 1;
      const auto w =
          test::random_floats(rng, static_cast<size_t>(g.out_c) * g.cin_g * g.kh * g.kw, -1.f, 1.f);
      const size_t n_in = static_cast<size_t>(g.in_h) * g.in_w * g.in_c;
      const auto xf = test::random_floats(rng, n_in, -2.f, 2.f);
      const auto xc = test::random_codes(rng, n_in, 8);
      const auto scale = test::random_floats(rng, g.out_c, 0.5f, 2.f);
      const auto bias = test::random_floats(rng, g.out_c, -1.f, 1.f);
      k::Epilogue e;
      e.scale = scale.data();
      e.bias = bias.data();
      e.out_codes = it++ % 2 == 0;
      e.n_out = 15;
      e.inv = 15.f / 3.f;
      e.act = FloatAct::kRelu;
      const void* x = codes_in ? static_cast<const void*>(xc.data()) : xf.data();
      expect_fconv_matches_reference(*set, g, w, x, codes_in, 0.02f, e,
                                     "k" + std::to_string(sh.k) + " s" + std::to_string(sh.s) +
                                         " cin " + std::to_string(sh.cin) + " codes " +
                                         std::to_string(codes_in));
      if (HasFatalFailure()) return;
    }
}

// The dispatch reads PACTQ_ISA once per process, so each setting is tested in
// a child: this binary, running only ReportChosenKernels.
constexpr const char* kReportEnv = "PACTQ_TEST_REPORT_KERNELS";

// Prints the variants the dispatch chose, in a child started by
// run_with_isa(); does nothing in a normal run.
TEST(QConvDispatch, ReportChosenKernels) {
  if (std::getenv(kReportEnv) == nullptr) return;
  // Each family's pointer, compared with every set's: the set the runtime
  // uses must be one ISA throughout.
  const k::KernelSet& chosen = k::selected_kernel_set();
  auto variant_of = [](auto member, auto value) -> std::string {
    for (Isa isa : {Isa::kRef, Isa::kAvx2, Isa::kAvx512Vnni, Isa::kAmx}) {
      const k::KernelSet* s = k::kernel_set(isa);
      if (s && s->*member == value) return isa_name(isa);
    }
    return "unknown";
  };
  // The AMX set's float conv is the AVX-512 one (no tile kernel for floats).
  std::printf("qconv=%s fconv=%s\n", variant_of(&k::KernelSet::qconv, chosen.qconv).c_str(),
              variant_of(&k::KernelSet::fconv, chosen.fconv).c_str());
}

struct ChildRun {
  int status = -1;
  std::string out, err;
};

std::string read_and_remove(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  std::remove(path.c_str());
  return s.str();
}

// Runs ReportChosenKernels in a child with PACTQ_ISA = `isa` (nullptr: unset).
ChildRun run_with_isa(const char* isa) {
  ChildRun r;
  char exe[4096];
  const ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len <= 0) return r;
  exe[len] = '\0';
  // GTEST_* would let sharding filter the test out or the child overwrite
  // the parent's XML report.
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string var = *e;
    if (var.rfind("PACTQ_ISA=", 0) != 0 && var.rfind("GTEST_", 0) != 0) env.push_back(var);
  }
  if (isa != nullptr) env.push_back(std::string("PACTQ_ISA=") + isa);
  env.push_back(std::string(kReportEnv) + "=1");
  std::vector<char*> envp;
  for (auto& v : env) envp.push_back(v.data());
  envp.push_back(nullptr);
  std::string filter = "--gtest_filter=QConvDispatch.ReportChosenKernels";
  char* argv[] = {exe, filter.data(), nullptr};

  static int calls = 0;
  const std::string base = ::testing::TempDir() + "pactq_isa_child_" + std::to_string(getpid()) +
                           "_" + std::to_string(calls++);
  const std::string out_path = base + ".out", err_path = base + ".err";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid;
  const int rc = posix_spawn(&pid, exe, &fa, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return r;
  if (waitpid(pid, &r.status, 0) != pid) r.status = -1;
  r.out = read_and_remove(out_path);
  r.err = read_and_remove(err_path);
  return r;
}

// What the dispatch must pick with the cap `cap`: the best variant the CPU
// (and build) has at or below it.
std::string expected_variant(const std::string& cap) {
  if (cap == "amx" && k::kernel_set(Isa::kAmx)) return "amx";
  if ((cap == "amx" || cap == "avx512vnni") && k::kernel_set(Isa::kAvx512Vnni)) return "avx512vnni";
  if (cap != "ref" && k::kernel_set(Isa::kAvx2)) return "avx2";
  return "ref";
}

// The float conv variant that goes with a quantized one: AMX has none of its own.
std::string fconv_variant(const std::string& qconv_variant) {
  return qconv_variant == "amx" ? "avx512vnni" : qconv_variant;
}

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

void expect_child_selects(const char* isa, const std::string& variant) {
  SCOPED_TRACE(std::string("PACTQ_ISA=") + (isa ? isa : "(unset)"));
  const ChildRun r = run_with_isa(isa);
  ASSERT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0) << r.out << r.err;
  EXPECT_EQ(count_of(r.out, "qconv=" + variant + " fconv=" + fconv_variant(variant) + "\n"), 1u)
      << r.out;
  EXPECT_EQ(count_of(r.err, "PACTQ_ISA"), 0u) << "a valid value must not warn: " << r.err;
}

TEST(QConvDispatch, EnvironmentCanForceReference) {
  expect_child_selects("ref", "ref");
}

TEST(QConvDispatch, EnvironmentCanCapAtAvx2) {
  // On a CPU without AVX2 the cap selects what the CPU has: the reference.
  expect_child_selects("avx2", expected_variant("avx2"));
}

TEST(QConvDispatch, EnvironmentCanCapAtAvx512Vnni) {
  // On an AMX CPU this keeps the tile kernels out (to compare the two).
  expect_child_selects("avx512vnni", expected_variant("avx512vnni"));
}

TEST(QConvDispatch, UnsetEmptyOrTopValueSelectsCpuBest) {
  const std::string best = expected_variant("amx");
  expect_child_selects(nullptr, best);
  expect_child_selects("", best);
  expect_child_selects("amx", best);
}

TEST(QConvDispatch, UnknownValueWarnsOnceAndIsIgnored) {
  for (const char* bogus : {"avx512", "REF"}) {
    SCOPED_TRACE(bogus);
    const ChildRun r = run_with_isa(bogus);
    ASSERT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0) << r.out << r.err;
    const std::string best = expected_variant("amx");
    EXPECT_EQ(count_of(r.out, "qconv=" + best + " fconv=" + fconv_variant(best) + "\n"), 1u)
        << r.out;
    // One warning although both kernel families consulted the selection.
    EXPECT_EQ(count_of(r.err, "PACTQ_ISA"), 1u) << r.err;
    EXPECT_EQ(count_of(r.err, std::string("PACTQ_ISA=") + bogus + ":"), 1u) << r.err;
    for (const char* valid : {"ref", "avx2", "avx512vnni", "amx"})
      EXPECT_NE(r.err.find(valid), std::string::npos) << valid << " not listed: " << r.err;
  }
}

}  // namespace
}  // namespace pactq::rt
