// Kernel families of the runtime. Internal layout: one image is NHWC
// (pixel-major, channels contiguous). Every family has one signature, a
// scalar reference in kernels/ref (always built) and optional ISA variants
// (kernels/avx2) that must produce bit-identical results.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <vector>

#include "pactq/common/cpu_isa.h"
#include "pactq/runtime/graph.h"
#include "pactq/runtime/quant_format.h"

namespace pactq::rt::kernels {

// Geometry of one conv (linear = 1x1 conv on a 1x1 image).
struct ConvGeom {
  int in_h = 1, in_w = 1, in_c = 1;  // input image; in_c is also the pixel stride
  int out_h = 1, out_w = 1, out_c = 1;
  int kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0;
  int groups = 1, cin_g = 1, cout_g = 1;
};

// Fused per-output-channel epilogue:
//   y = scale[c] * acc + bias[c]; y += residual; then FLOAT(act) or CODES(requant).
struct Epilogue {
  const float* scale = nullptr;  // [out_c]
  const float* bias = nullptr;   // [out_c]
  // Residual image (NHWC res_h x res_w x res_c), nullptr = none. Output pixel
  // (oh, ow, c) adds residual (oh*res_stride, ow*res_stride, c - res_pad),
  // zero when c - res_pad is outside [0, res_c).
  const void* res = nullptr;
  bool res_codes = false;
  float res_scale = 1.f;  // codes: real = code * res_scale
  int res_h = 0, res_w = 0, res_c = 0, res_stride = 1, res_pad = 0;
  // Output.
  bool out_codes = false;
  int n_out = 0;    // codes: 2^bits - 1
  float inv = 0.f;  // codes: (float)n_out / alpha
  FloatAct act = FloatAct::kNone;
  float alpha = 0.f;  // float clip
};

// Helpers below are `static inline` on purpose: they are compiled into TUs
// with different ISA flags (ref/ and avx2/), and internal linkage keeps the
// linker from merging an AVX2-compiled copy into the reference path.

using format::requantize;  // THE requant rule (runtime/quant_format.h)

static inline float float_activation(float y, FloatAct act, float alpha) {
  if (act == FloatAct::kNone) return y;
  y = y > 0.f ? y : 0.f;
  if (act == FloatAct::kClip) y = y < alpha ? y : alpha;
  return y;
}

// Element index in the residual image of output pixel (oh, ow), channel c
// (which must lie in [res_pad, res_pad + res_c)).
static inline size_t residual_index(const Epilogue& e, int oh, int ow, int c) {
  return (static_cast<size_t>(oh) * e.res_stride * e.res_w +
          static_cast<size_t>(ow) * e.res_stride) *
             e.res_c +
         (c - e.res_pad);
}

// The form of the residual over output channels c0..c0+n-1: the same for every
// pixel of a block, so the SIMD epilogues decide it once per block. None;
// codes or floats covering all n channels (read at a fixed pixel step); or any
// other (a block straddling a padded shortcut's channels: per channel).
enum class ResForm { kNone, kCodes, kFloats, kAny };
static inline ResForm residual_form(const Epilogue& e, int c0, int n) {
  if (!e.res) return ResForm::kNone;
  const int rc0 = c0 - e.res_pad;
  if (rc0 < 0 || rc0 + n > e.res_c) return ResForm::kAny;
  return e.res_codes ? ResForm::kCodes : ResForm::kFloats;
}

static inline float residual_value(const Epilogue& e, int oh, int ow, int c) {
  const int rc = c - e.res_pad;
  if (rc < 0 || rc >= e.res_c) return 0.f;
  const size_t idx = residual_index(e, oh, ow, c);
  if (e.res_codes) return static_cast<float>(static_cast<const uint8_t*>(e.res)[idx]) * e.res_scale;
  return static_cast<const float*>(e.res)[idx];
}

// Scalar epilogue for one output value; `out` is the output image, `idx` the
// NHWC element index. acc is the int32 accumulator converted to float (or the
// float dot product on the float path).
static inline void epilogue_store(const Epilogue& e, float acc, int oh, int ow, int c, void* out,
                                  size_t idx) {
  float y = e.scale[c] * acc;
  y = y + e.bias[c];
  if (e.res) y = y + residual_value(e, oh, ow, c);
  if (e.out_codes) {
    static_cast<uint8_t*>(out)[idx] = requantize(y, e.inv, e.n_out);
  } else {
    static_cast<float*>(out)[idx] = float_activation(y, e.act, e.alpha);
  }
}

// The 4 activation bytes of a K quad as one int32 (unaligned), for the SIMD
// kernels to broadcast.
static inline int32_t load_quad(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// The input pixels that MR consecutive outputs (ow0.. of the row whose kernel
// row r reads input row ih) read at kernel column s, for the blocked SIMD
// kernels: a tap outside the image, or an output past the row end, gets the
// `zeros` pixel. Interior blocks (the common case) skip the per-pixel checks.
template <int MR, class T>
static inline void tap_pixels(const ConvGeom& g, const T* in, int ih, int ow0, int s, size_t goff,
                              const T* zeros, const T* (&px)[MR]) {
  const bool row_ok = ih >= 0 && ih < g.in_h;
  const int iw0 = ow0 * g.sw - g.pw + s;
  if (row_ok && iw0 >= 0 && ow0 + MR <= g.out_w && iw0 + (MR - 1) * g.sw < g.in_w) {
    const T* p0 = in + (static_cast<size_t>(ih) * g.in_w + iw0) * g.in_c + goff;
    const size_t step = static_cast<size_t>(g.sw) * g.in_c;
    for (int i = 0; i < MR; ++i) px[i] = p0 + i * step;
    return;
  }
  for (int i = 0; i < MR; ++i) {
    const int iw = iw0 + i * g.sw;
    px[i] = (row_ok && ow0 + i < g.out_w && iw >= 0 && iw < g.in_w)
                ? in + (static_cast<size_t>(ih) * g.in_w + iw) * g.in_c + goff
                : zeros;
  }
}

// Storage aligned to a cache line: AMX tile loads of 64-byte rows cost ~6x
// more when the rows straddle lines (measured: 16 vs 2.8 ns per tile).
template <class T>
struct CacheLineAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlign{64};
  CacheLineAllocator() = default;
  template <class U>
  CacheLineAllocator(const CacheLineAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlign)); }
  void deallocate(T* p, size_t) { ::operator delete(p, kAlign); }
  template <class U>
  bool operator==(const CacheLineAllocator<U>&) const {
    return true;
  }
  template <class U>
  bool operator!=(const CacheLineAllocator<U>&) const {
    return false;
  }
};
template <class T>
using AlignedVector = std::vector<T, CacheLineAllocator<T>>;

// ------------------------------------------------------------ quantized conv
// Integer conv over unsigned activation codes (0..a_max) with weight codes
// q (0..n_w): acc = sum (2q - n_w) * a, padding contributes a = 0.
struct PackedQConv {
  ConvGeom g;
  int wbits = 0, n_w = 0, a_max = 0;
  int mode = 0;       // variant specific
  int i16_steps = 0;  // variant specific: int16 accumulation steps before widening
  int cq = 0;         // variant specific: K quads per tap (AMX: K chunks per kernel row)
  int tile_k = 0;     // variant specific: K bytes per tile row (AMX)
  std::vector<int16_t> w16;
  AlignedVector<int8_t> w8;
  std::vector<uint8_t> zeros;  // a zero "pixel" for padding taps
  std::vector<uint8_t> lut;    // variant specific: product tables
  int lut_flush = 0;           // variant specific
};

struct QConvKernel {
  const char* name;
  // codes: logical [out_c][cin_g][kh][kw], values 0..2^wbits-1.
  void (*pack)(const ConvGeom& g, const uint8_t* codes, int wbits, int a_max, PackedQConv* out);
  // Computes output rows [oh_begin, oh_end) of one image of geometry `g`:
  // p.g, or for a layer with 1x1 kernel, input and output (a linear layer),
  // p.g with in_w = out_w = N to run N consecutive images as one row, so each
  // weight is loaded once for N images (the packed weights do not depend on
  // the width). `in` must be readable for 64 bytes past the image end (the
  // runtime pads buffers).
  void (*run_rows)(const PackedQConv& p, const ConvGeom& g, const uint8_t* in, const Epilogue& e,
                   void* out, int oh_begin, int oh_end);
};

// The scalar reference, always built; the ISA variants are reached through
// kernel_set() below.
const QConvKernel& qconv_ref_kernel();

// ------------------------------------------------------------ float conv
// Float conv (fp first/last layers, or float input): y = scale*sum(w*x)+bias.
// Input is a float image, or codes dequantized on the fly as code * in_scale.
struct PackedFConv {
  ConvGeom g;
  std::vector<float> w;  // [group][kh][kw][cin_g][cout_g]
};
// w: logical [out_c][cin_g][kh][kw] real weights.
void fconv_pack(const ConvGeom& g, const float* w, PackedFConv* out);
using FConvRowsFn = void (*)(const PackedFConv& p, const void* in, bool in_codes, float in_scale,
                             const Epilogue& e, void* out, int oh_begin, int oh_end);
void fconv_rows_ref(const PackedFConv& p, const void* in, bool in_codes, float in_scale,
                    const Epilogue& e, void* out, int oh_begin, int oh_end);

// ------------------------------------------------------------ other ops (one image)
struct TensorRef {
  const void* data = nullptr;
  bool codes = false;
  float scale = 1.f;  // codes: real = code * scale
};
struct OutputRef {
  void* data = nullptr;
  bool codes = false;
  int n_out = 0;
  float inv = 0.f;
  FloatAct act = FloatAct::kNone;
  float alpha = 0.f;
};
static inline void store_value(const OutputRef& o, size_t idx, float y) {
  if (o.codes) {
    static_cast<uint8_t*>(o.data)[idx] = requantize(y, o.inv, o.n_out);
  } else {
    static_cast<float*>(o.data)[idx] = float_activation(y, o.act, o.alpha);
  }
}
static inline float load_value(const TensorRef& t, size_t idx) {
  if (t.codes) return static_cast<float>(static_cast<const uint8_t*>(t.data)[idx]) * t.scale;
  return static_cast<const float*>(t.data)[idx];
}

struct PoolGeom {
  int in_h, in_w, c, out_h, out_w, kh, kw, sh, sw, ph, pw;
};
// The input window of pooled output (oh, ow), clipped to the image: rows
// [h0, h1), columns [w0, w1); `out` is the output pixel's first element.
struct PoolWindow {
  int h0, h1, w0, w1;
  size_t out;
  // Element index of input pixel (h, w), channel 0.
  size_t at(const PoolGeom& g, int h, int w) const {
    return (static_cast<size_t>(h) * g.in_w + w) * g.c;
  }
};
// Calls fn(window) for every output pixel of rows [oh0, oh1), in order.
template <class Fn>
static inline void for_each_pool_window(const PoolGeom& g, int oh0, int oh1, Fn&& fn) {
  for (int oh = oh0; oh < oh1; ++oh)
    for (int ow = 0; ow < g.out_w; ++ow) {
      const int h = oh * g.sh - g.ph, w = ow * g.sw - g.pw;
      fn(PoolWindow{h > 0 ? h : 0, h + g.kh < g.in_h ? h + g.kh : g.in_h, w > 0 ? w : 0,
                    w + g.kw < g.in_w ? w + g.kw : g.in_w,
                    (static_cast<size_t>(oh) * g.out_w + ow) * g.c});
    }
}
// Max pool: codes -> codes (same bits), float -> float. Rows [oh0, oh1).
using MaxPoolRowsFn = void (*)(const PoolGeom& g, const void* in, bool codes, void* out, int oh0,
                               int oh1);
void max_pool_rows(const PoolGeom& g, const void* in, bool codes, void* out, int oh0, int oh1);
// Avg pool, count_include_pad = true: y = sum / (kh*kw) (codes: (float)sum * scale / count).
void avg_pool_rows(const PoolGeom& g, const TensorRef& in, const OutputRef& out, int oh0, int oh1);
void global_avg_pool(int h, int w, int c, const TensorRef& in, const OutputRef& out);
// y = a + b elementwise over n values.
using AddValuesFn = void (*)(size_t n, const TensorRef& a, const TensorRef& b,
                             const OutputRef& out);
void add_values(size_t n, const TensorRef& a, const TensorRef& b, const OutputRef& out);
// y = scale[c] * x + bias[c] (mul then add) over an NHWC image of `pixels` pixels.
using AffineValuesFn = void (*)(size_t pixels, int c, const TensorRef& x, const float* scale,
                                const float* bias, const OutputRef& out);
void affine_values(size_t pixels, int c, const TensorRef& x, const float* scale, const float* bias,
                   const OutputRef& out);

// ------------------------------------------------------------ kernel sets
// One kernel of every ISA-specific family, all of one ISA: the runtime picks a
// whole set once (common/cpu_isa.h's selected_isa()), never a family at a
// time, so a model's packed weights and the kernels that read them agree.
struct KernelSet {
  Isa isa = Isa::kRef;
  const QConvKernel* qconv = nullptr;
  FConvRowsFn fconv = nullptr;
  const char* fconv_name = "";
  // Element-wise and pooling families (memory bound; bit-identical to ref/ops.cpp).
  const char* values_name = "";
  AffineValuesFn affine = nullptr;
  AddValuesFn add = nullptr;
  MaxPoolRowsFn max_pool = nullptr;
};

// The set for `isa`, filled once; nullptr when this build or this CPU cannot
// run it. kernel_set(Isa::kRef) always exists.
const KernelSet* kernel_set(Isa isa);
// THE set the runtime uses: the best set at or below selected_isa() (a set
// may be missing from the build, e.g. AVX-512 on a non-x86 compiler).
const KernelSet& selected_kernel_set();

}  // namespace pactq::rt::kernels
