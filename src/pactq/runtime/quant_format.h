// The .pqm format's arithmetic (docs/format.md), in one place: which bit
// widths exist, a width's largest code, the real value of one code step, the
// requant multiplier and the real value of a weight code. The exporter, the
// reference executor, the loader and the kernels all use these, so the file's
// numbers mean the same thing on both sides. Torch-free, header-only.
//
// Every function is `static`: this header is included by kernel files compiled
// with different ISA flags (kernels/avx2, kernels/avx512), and internal
// linkage keeps the linker from merging an AVX-compiled copy into code that
// must run on any x86-64.
#pragma once
#include <cmath>
#include <cstdint>

namespace pactq::rt::format {

// Activation and weight codes are 1..8 bits wide (unsigned, 0..max_code).
constexpr int kMinBits = 1;
constexpr int kMaxBits = 8;

static constexpr bool valid_bits(int bits) {
  return bits >= kMinBits && bits <= kMaxBits;
}

// n = 2^bits - 1: codes are 0..n.
static constexpr int max_code(int bits) {
  return (1 << bits) - 1;
}

// Real value of one activation code step: a * (alpha / n), computed in float
// exactly as the runtime does (the exporter folds the same float into out_scale).
static inline float code_scale(float alpha, int bits) {
  return alpha / static_cast<float>(max_code(bits));
}

// The requant multiplier of a CODES output: t = y * ((float)n / alpha).
static inline float requant_inverse(float alpha, int bits) {
  return static_cast<float>(max_code(bits)) / alpha;
}

// THE requant rule of a CODES output: t = y * inv, clamped to [0, n] (NaN ->
// 0), rounded half to even.
static inline uint8_t requantize(float y, float inv, int n) {
  float t = y * inv;
  t = t > 0.f ? t : 0.f;
  const float nf = static_cast<float>(n);
  t = t < nf ? t : nf;
  return static_cast<uint8_t>(std::nearbyint(t));
}

// Real value of weight code q: w_scale * ((2q - n_w) / n_w) (float path).
static inline float weight_value(int q, int bits, float w_scale) {
  const int n = max_code(bits);
  return w_scale * (static_cast<float>(2 * q - n) / static_cast<float>(n));
}

// Largest |acc| term of the integer path: |2q - n_w| * a <= n_w * n_a. The
// int32 accumulator of K terms cannot overflow while K * n_w * n_a fits.
static constexpr bool int32_accumulator_fits(int64_t k, int weight_bits, int input_bits) {
  return k * max_code(weight_bits) * max_code(input_bits) <= int64_t{2147483647};
}

}  // namespace pactq::rt::format
