// Public description of a .pqm graph: the node structs the exporter fills in
// and hands to ModelWriter, and the error types of the runtime.
//
// Numerics (see docs/format.md for the normative text; runtime/quant_format.h
// holds the arithmetic):
//   codes tensor : unsigned codes a in 0..n (n = 2^bits - 1), real value a * (alpha / n)
//   weight codes : q in 0..n_w, real weight w_scale * (2q - n_w) / n_w
//   integer path : (codes weights AND codes input)
//                  acc = sum (2q - n_w) * a            (int32)
//                  y   = out_scale[c] * acc + out_bias[c]
//   float path   : (float weights, or float input)
//                  y   = out_scale[c] * sum(w * x) + out_bias[c]
//                  w = real weight, x = real input value (codes are dequantized)
//   residual     : y += real value of the residual input (after option-A transform)
//   output       : FLOAT  -> y, relu(y) or min(max(y, 0), alpha)
//                  CODES  -> t = y * ((float)n_out / alpha);
//                            a = nearbyint(clamp(t, 0, n_out)), NaN -> 0
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace pactq::rt {

// Every problem with a model file (corrupt, truncated, inconsistent) and every
// misuse of the writer throws this. The message names the file and the problem.
class FormatError : public std::runtime_error {
 public:
  explicit FormatError(const std::string& what) : std::runtime_error(what) {}
};

// A model file that cannot be opened or read (missing, a directory, no
// permission, an I/O failure): the message names the file and the OS's reason.
// Not a FormatError: the file's content was never judged.
class IoError : public std::runtime_error {
 public:
  explicit IoError(const std::string& what) : std::runtime_error(what) {}
};

// Activation applied to a FLOAT output.
enum class FloatAct { kNone, kRelu, kClip };

// How a node materialises its output.
struct OutputSpec {
  bool codes = false;  // false: FLOAT tensor; true: unsigned codes 0..2^bits-1
  int bits = 0;        // CODES: 1..8
  float alpha = 0.f;   // CODES: clipping level (scale = alpha / n); FLOAT+kClip: clip level
  FloatAct act = FloatAct::kNone;  // FLOAT only

  static OutputSpec Float(FloatAct act = FloatAct::kNone, float alpha = 0.f) {
    OutputSpec s;
    s.act = act;
    s.alpha = alpha;
    return s;
  }
  static OutputSpec Codes(int bits, float alpha) {
    OutputSpec s;
    s.codes = true;
    s.bits = bits;
    s.alpha = alpha;
    return s;
  }
};

// The network input: pixels in [0,1], NCHW float; the runtime normalises
// x = (p - mean[c]) / std[c]. Output: FLOAT [channels, height, width].
struct InputNode {
  std::string name = "input";
  int channels = 0, height = 0, width = 0;
  std::vector<float> mean;  // [channels]; empty = all 0
  std::vector<float> std;   // [channels]; empty = all 1
};

// Weights of a conv/linear, logical order [out, in/groups, kh, kw] (linear: [out, in]).
// Exactly one of `f32` or `codes` is non-empty.
struct WeightData {
  std::vector<float> f32;      // float weights (real values)
  std::vector<uint8_t> codes;  // unpacked codes q in 0..2^bits-1, one per byte; the writer packs
  int bits = 0;                // 1..8 when codes
  float scale = 1.f;           // w_scale: real w = scale * (2q - n_w) / n_w

  static WeightData Float(std::vector<float> w) {
    WeightData d;
    d.f32 = std::move(w);
    return d;
  }
  static WeightData Codes(std::vector<uint8_t> q, int bits, float scale) {
    WeightData d;
    d.codes = std::move(q);
    d.bits = bits;
    d.scale = scale;
    return d;
  }
};

// Optional residual added to a conv/linear pre-activation (and nothing else).
// The residual tensor r (FLOAT or CODES) is transformed "option A":
// r' = zero-pad-channels(r[:, :, ::stride, ::stride], pad_channels on each side)
// and must then have the node's output shape.
struct Residual {
  std::string input;  // empty = no residual
  int stride = 1;
  int pad_channels = 0;
};

struct ConvNode {
  std::string name, input;
  int in_channels = 0, out_channels = 0;
  int kernel_h = 1, kernel_w = 1;
  int stride_h = 1, stride_w = 1;
  int pad_h = 0, pad_w = 0;
  int groups = 1;
  WeightData weight;             // [out, in/groups, kh, kw]
  std::vector<float> out_scale;  // [out]
  std::vector<float> out_bias;   // [out]
  Residual residual;
  OutputSpec output;
};

// y = W x on an input of shape [in_features, 1, 1] (after flatten or global pool).
struct LinearNode {
  std::string name, input;
  int in_features = 0, out_features = 0;
  WeightData weight;             // [out, in]
  std::vector<float> out_scale;  // [out]
  std::vector<float> out_bias;   // [out]
  Residual residual;
  OutputSpec output;
};

// max_pool2d: output keeps the input's type (codes stay codes, same bits/alpha);
// padding never wins the max. avg_pool2d: count_include_pad = true, floor mode;
// output per `output`. Codes input: y = (float)sum(a) * scale_in / count.
struct PoolNode {
  std::string name, input;
  bool max = true;
  int kernel_h = 2, kernel_w = 2;
  int stride_h = 2, stride_w = 2;
  int pad_h = 0, pad_w = 0;
  OutputSpec output;  // avg only
};

// Mean over H x W -> [C, 1, 1]. Codes input: y = (float)sum(a) * scale_in / (H*W).
struct GlobalAvgPoolNode {
  std::string name, input;
  OutputSpec output;
};

// [C, H, W] -> [C*H*W, 1, 1] in PyTorch (C-major) order; keeps the input's type.
struct FlattenNode {
  std::string name, input;
};

// y = real(a) + real(b), same shapes.
struct AddNode {
  std::string name, a, b;
  OutputSpec output;
};

// y[c] = scale[c] * real(x) + bias[c] (pre-activation ResNets: BN + PACT after a sum).
struct AffineNode {
  std::string name, input;
  std::vector<float> scale;  // [C]
  std::vector<float> bias;   // [C]
  OutputSpec output;
};

}  // namespace pactq::rt
