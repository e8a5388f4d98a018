#include "pactq/runtime/pack.h"

#include <string>

#include "pactq/runtime/graph.h"

namespace pactq::rt {

int packed_bits_for(int bits) {
  if (bits == 1) return 1;
  if (bits == 2) return 2;
  if (bits == 3 || bits == 4) return 4;
  if (bits >= 5 && bits <= 8) return 8;
  throw FormatError("unsupported weight bits " + std::to_string(bits) + " (expected 1..8)");
}

size_t packed_size(size_t count, int packed_bits) {
  return (count / 8) * static_cast<size_t>(packed_bits) +
         ((count % 8) * static_cast<size_t>(packed_bits) + 7) / 8;
}

std::vector<uint8_t> pack_codes(const std::vector<uint8_t>& codes, int bits) {
  const int p = packed_bits_for(bits);
  const unsigned n = (1u << bits) - 1u;
  const int per_byte = 8 / p;
  std::vector<uint8_t> out(packed_size(codes.size(), p), 0);
  for (size_t i = 0; i < codes.size(); ++i) {
    if (codes[i] > n) {
      throw FormatError("pack_codes: code " + std::to_string(codes[i]) + " at index " +
                        std::to_string(i) + " exceeds " + std::to_string(n) + " for " +
                        std::to_string(bits) + "-bit codes");
    }
    out[i / per_byte] |= static_cast<uint8_t>(codes[i] << ((i % per_byte) * p));
  }
  return out;
}

std::vector<uint8_t> unpack_codes(const uint8_t* bytes, size_t nbytes, size_t count, int bits) {
  const int p = packed_bits_for(bits);
  if (nbytes != packed_size(count, p)) {
    throw FormatError("unpack_codes: " + std::to_string(nbytes) + " bytes for " +
                      std::to_string(count) + " codes at " + std::to_string(p) +
                      " bits (expected " + std::to_string(packed_size(count, p)) + ")");
  }
  const int per_byte = 8 / p;
  const unsigned mask = (1u << p) - 1u;
  std::vector<uint8_t> out(count);
  for (size_t i = 0; i < count; ++i) {
    out[i] = static_cast<uint8_t>((bytes[i / per_byte] >> ((i % per_byte) * p)) & mask);
  }
  return out;
}

}  // namespace pactq::rt
