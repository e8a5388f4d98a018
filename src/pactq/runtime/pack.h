// Bit packing of weight codes in .pqm files.
//
// A code of b bits is stored with packed_bits_for(b) bits (1, 2, 4 or 8):
// 8 / packed_bits codes per byte, code i of a byte at bits [i*p, (i+1)*p)
// (little end first). Byte count = ceil(count * p / 8).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace pactq::rt {

// 1 -> 1, 2 -> 2, 3..4 -> 4, 5..8 -> 8. Throws FormatError outside 1..8.
int packed_bits_for(int bits);

// Bytes needed for `count` codes at `packed_bits` per code.
size_t packed_size(size_t count, int packed_bits);

// Packs codes (each < 2^bits, else FormatError) with packed_bits_for(bits).
std::vector<uint8_t> pack_codes(const std::vector<uint8_t>& codes, int bits);

// Unpacks `count` codes stored with packed_bits_for(bits) from `bytes`
// (`nbytes` must equal packed_size, else FormatError).
std::vector<uint8_t> unpack_codes(const uint8_t* bytes, size_t nbytes, size_t count, int bits);

}  // namespace pactq::rt
