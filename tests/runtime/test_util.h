// Helpers shared by the runtime tests: random data and an independent, naive
// NCHW evaluator of the .pqm numerics (docs/format.md), written directly from
// the formulas and deliberately not sharing code with the runtime.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "pactq/runtime/graph.h"

namespace pactq::rt::test {

inline std::vector<uint8_t> random_codes(std::mt19937& rng, size_t n, int bits) {
  std::uniform_int_distribution<int> d(0, (1 << bits) - 1);
  std::vector<uint8_t> v(n);
  for (auto& x : v) x = static_cast<uint8_t>(d(rng));
  return v;
}

inline std::vector<float> random_floats(std::mt19937& rng, size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// The requant rule, written out independently.
inline int naive_requant(float y, int bits, float alpha) {
  const int n = (1 << bits) - 1;
  const float inv = static_cast<float>(n) / alpha;
  const float t = y * inv;
  if (!(t > 0.f)) return 0;
  if (t >= static_cast<float>(n)) return n;
  return static_cast<int>(std::nearbyint(t));
}

// A tensor of one image, NCHW.
struct TVal {
  int c = 0, h = 0, w = 0;
  bool codes = false;
  int bits = 0;
  float alpha = 0.f;
  std::vector<float> f;  // float values
  std::vector<int> a;    // codes
  size_t size() const { return static_cast<size_t>(c) * h * w; }
  float scale() const { return alpha / static_cast<float>((1 << bits) - 1); }
  float real(size_t i) const { return codes ? static_cast<float>(a[i]) * scale() : f[i]; }
  size_t at(int ch, int y, int x) const { return (static_cast<size_t>(ch) * h + y) * w + x; }
};

inline TVal make_output(const OutputSpec& s, int c, int h, int w) {
  TVal t;
  t.c = c;
  t.h = h;
  t.w = w;
  t.codes = s.codes;
  t.bits = s.bits;
  t.alpha = s.alpha;
  if (s.codes) {
    t.a.assign(t.size(), 0);
  } else {
    t.f.assign(t.size(), 0.f);
  }
  return t;
}

inline void set_output(TVal& t, const OutputSpec& s, size_t i, float y) {
  if (s.codes) {
    t.a[i] = naive_requant(y, s.bits, s.alpha);
  } else {
    if (s.act != FloatAct::kNone) y = std::fmax(y, 0.f);
    if (s.act == FloatAct::kClip) y = std::fmin(y, s.alpha);
    t.f[i] = y;
  }
}

inline float naive_weight(const WeightData& w, size_t i) {
  if (!w.f32.empty()) return w.f32[i];
  const int n = (1 << w.bits) - 1;
  return w.scale * (static_cast<float>(2 * w.codes[i] - n) / static_cast<float>(n));
}

// conv2d per the spec; `res` may be null.
inline TVal naive_conv(const ConvNode& n, const TVal& x, const TVal* res) {
  const int oh = (x.h + 2 * n.pad_h - n.kernel_h) / n.stride_h + 1;
  const int ow = (x.w + 2 * n.pad_w - n.kernel_w) / n.stride_w + 1;
  TVal y = make_output(n.output, n.out_channels, oh, ow);
  const int cin_g = n.in_channels / n.groups, cout_g = n.out_channels / n.groups;
  const bool integer = !n.weight.codes.empty() && x.codes;
  for (int oc = 0; oc < n.out_channels; ++oc) {
    const int grp = oc / cout_g;
    for (int i = 0; i < oh; ++i)
      for (int j = 0; j < ow; ++j) {
        int64_t acc = 0;
        float facc = 0.f;
        for (int r = 0; r < n.kernel_h; ++r)
          for (int s = 0; s < n.kernel_w; ++s) {
            const int ih = i * n.stride_h - n.pad_h + r, iw = j * n.stride_w - n.pad_w + s;
            if (ih < 0 || ih >= x.h || iw < 0 || iw >= x.w) continue;
            for (int ci = 0; ci < cin_g; ++ci) {
              const size_t xi = x.at(grp * cin_g + ci, ih, iw);
              const size_t wi =
                  ((static_cast<size_t>(oc) * cin_g + ci) * n.kernel_h + r) * n.kernel_w + s;
              if (integer) {
                const int nw = (1 << n.weight.bits) - 1;
                acc += static_cast<int64_t>(2 * n.weight.codes[wi] - nw) * x.a[xi];
              } else {
                facc += x.real(xi) * naive_weight(n.weight, wi);
              }
            }
          }
        float v = n.out_scale[oc] * (integer ? static_cast<float>(acc) : facc);
        v = v + n.out_bias[oc];
        if (res) {
          const int rc = oc - n.residual.pad_channels;
          float r = 0.f;
          if (rc >= 0 && rc < res->c) {
            r = res->real(res->at(rc, i * n.residual.stride, j * n.residual.stride));
          }
          v = v + r;
        }
        set_output(y, n.output, y.at(oc, i, j), v);
      }
  }
  return y;
}

}  // namespace pactq::rt::test
