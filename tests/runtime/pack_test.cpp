#include <gtest/gtest.h>

#include <random>

#include "pactq/runtime/pack.h"
#include "test_util.h"

namespace pactq::rt {
namespace {

TEST(Pack, PackedBitsForEveryWidth) {
  const int expect[9] = {0, 1, 2, 4, 4, 8, 8, 8, 8};
  for (int b = 1; b <= 8; ++b) EXPECT_EQ(packed_bits_for(b), expect[b]) << b;
  EXPECT_THROW(packed_bits_for(0), FormatError);
  EXPECT_THROW(packed_bits_for(9), FormatError);
}

TEST(Pack, RoundTripEveryWidthAndLength) {
  std::mt19937 rng(1);
  for (int bits = 1; bits <= 8; ++bits) {
    for (size_t n : {0, 1, 2, 3, 5, 7, 8, 9, 31, 64, 1001}) {
      const auto codes = test::random_codes(rng, n, bits);
      const auto packed = pack_codes(codes, bits);
      ASSERT_EQ(packed.size(), (n * packed_bits_for(bits) + 7) / 8) << bits << " " << n;
      EXPECT_EQ(unpack_codes(packed.data(), packed.size(), n, bits), codes) << bits << " " << n;
    }
  }
}

TEST(Pack, LittleEndFirstLayout) {
  // 2-bit codes 1,2,3,0 -> 0b00'11'10'01 = 0x39; 4-bit 0xA,0x5 -> 0x5A; 1-bit.
  EXPECT_EQ(pack_codes({1, 2, 3, 0}, 2), std::vector<uint8_t>({0x39}));
  EXPECT_EQ(pack_codes({0xA, 0x5, 0x3}, 4), std::vector<uint8_t>({0x5A, 0x03}));
  EXPECT_EQ(pack_codes({5, 6}, 3), std::vector<uint8_t>({0x65}));
  EXPECT_EQ(pack_codes({1, 0, 1, 1, 0, 0, 0, 1, 1}, 1), std::vector<uint8_t>({0x8D, 0x01}));
  EXPECT_EQ(pack_codes({200, 7}, 8), std::vector<uint8_t>({200, 7}));
}

TEST(Pack, RejectsOutOfRangeCodesAndSizes) {
  EXPECT_THROW(pack_codes({4}, 2), FormatError);
  EXPECT_THROW(pack_codes({8}, 3), FormatError);
  const std::vector<uint8_t> bytes(3, 0);
  EXPECT_THROW(unpack_codes(bytes.data(), bytes.size(), 8, 4), FormatError);
}

}  // namespace
}  // namespace pactq::rt
