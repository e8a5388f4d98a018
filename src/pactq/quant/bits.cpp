#include "pactq/quant/bits.h"

#include <stdexcept>

namespace pactq::quant {

void check_bits(int bits, const std::string& what, int min_bits) {
  if (is_full_precision(bits) && bits == kFullPrecision) return;
  if (bits < min_bits || bits > kMaxBits) {
    throw std::invalid_argument(what + ": bit width " + std::to_string(bits) +
                                " is not supported (expected " + std::to_string(min_bits) + ".." +
                                std::to_string(kMaxBits) + " or fp)");
  }
}

int parse_bits(const std::string& text, const std::string& what) {
  if (text == "fp" || text == "fp32" || text == "32" || text == "float") return kFullPrecision;
  size_t used = 0;
  int bits = 0;
  try {
    bits = std::stoi(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size()) {
    throw std::invalid_argument(what + ": '" + text + "' is not a bit width (expected 1..8 or fp)");
  }
  check_bits(bits, what);
  return bits;
}

std::string bits_to_string(int bits) {
  return is_full_precision(bits) ? "fp" : std::to_string(bits);
}

}  // namespace pactq::quant
