// Bit widths: the one place that says what a valid width is and what "fp" means.
#pragma once
#include <cstdint>
#include <string>

namespace pactq::quant {

// Full precision is written as 32 bits everywhere (the paper's "k = 32").
constexpr int kFullPrecision = 32;
constexpr int kMinBits = 1;
constexpr int kMaxBits = 8;

inline bool is_full_precision(int bits) {
  return bits >= kFullPrecision;
}

// Number of quantization steps: codes are 0..levels_minus_one(bits).
inline int64_t max_code(int bits) {
  return (int64_t{1} << bits) - 1;
}

// Throws std::invalid_argument naming `what` unless bits is 1..8 or 32.
void check_bits(int bits, const std::string& what, int min_bits = kMinBits);

// Parses "4", "fp", "32", "w4"... into a width; throws naming `what` on garbage.
int parse_bits(const std::string& text, const std::string& what);

std::string bits_to_string(int bits);

}  // namespace pactq::quant
