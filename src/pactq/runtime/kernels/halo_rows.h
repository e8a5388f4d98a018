// The zero-halo copy of a conv's input rows, shared by the AVX2, AVX-512 VNNI
// and AMX quantized convs and the blocked float conv (static inline: each
// ISA's file compiles its own copy).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "pactq/runtime/kernels/kernels.h"

namespace pactq::rt::kernels {

// The input rows that output rows [oh0, oh1) read, copied with a zero halo:
// padding taps and the pixels of a block past the row end read zeros, so the
// blocks below compute every pixel address as base + constant, with no bounds
// checks and no pointer table (the copy costs ~1/100 of the conv's time).
struct HaloRows {
  const uint8_t* at = nullptr;  // pixel (first row, column -pw), channel 0
  size_t row_bytes = 0;         // one padded row
};

// Input rows ih0 .. ih0 + rows - 1 (zeros outside the image) into `buf`, each
// as `cols` pixel columns from column -pw, zero-padded to `row_bytes`, then
// `tail` zero bytes (for reads past the last row). Returns the first row.
// Elements are `elem_bytes` wide (codes 1, floats 4; all-zero bytes are 0.f).
static inline uint8_t* copy_rows_with_halo(const ConvGeom& g, const void* input, int ih0, int rows,
                                           int cols, size_t row_bytes, size_t tail,
                                           AlignedVector<uint8_t>& buf, size_t elem_bytes = 1) {
  const uint8_t* in = static_cast<const uint8_t*>(input);
  const size_t pix = static_cast<size_t>(g.in_c) * elem_bytes;
  const size_t body = static_cast<size_t>(rows) * row_bytes;
  buf.resize(body + tail);
  const int first = g.pw < cols ? g.pw : cols;  // columns of the image: [first, last)
  const int last = g.pw + g.in_w < cols ? g.pw + g.in_w : cols;
  for (int r = 0; r < rows; ++r) {
    uint8_t* dst = buf.data() + static_cast<size_t>(r) * row_bytes;
    const int ih = ih0 + r;
    if (ih < 0 || ih >= g.in_h || last <= first) {
      std::memset(dst, 0, row_bytes);
      continue;
    }
    std::memset(dst, 0, first * pix);
    std::memcpy(dst + first * pix, in + static_cast<size_t>(ih) * g.in_w * pix,
                static_cast<size_t>(last - first) * pix);
    std::memset(dst + last * pix, 0, row_bytes - last * pix);
  }
  std::memset(buf.data() + body, 0, tail);
  return buf.data();
}

// Calls fn(std::integral_constant<int, S>{}) with S = `step` (the bytes between
// two output pixels' inputs, sw x in_c) when it is one of the common values,
// so the kernel's pixel addresses are base + constant; S = 0 otherwise.
template <class Fn>
static inline void with_pixel_step(int step, Fn&& fn) {
  switch (step) {
    case 16:
      return fn(std::integral_constant<int, 16>{});
    case 32:
      return fn(std::integral_constant<int, 32>{});
    case 64:
      return fn(std::integral_constant<int, 64>{});
    case 128:
      return fn(std::integral_constant<int, 128>{});
    default:
      return fn(std::integral_constant<int, 0>{});
  }
}

// The rows output rows [oh0, oh1) read, each `reach` output pixels wide (the
// last pixel block's end, >= out_w: the blocks past out_w read zeros), rows
// starting on cache lines (the AMX kernel's tile loads read them fast), then
// 64 zero bytes for reads past the last pixel (quads of padded channels).
// Elements are `elem_bytes` wide; row_bytes is a multiple of 64.
static inline HaloRows copy_halo_rows(const ConvGeom& g, const void* in, int oh0, int oh1,
                                      int reach, AlignedVector<uint8_t>& buf,
                                      size_t elem_bytes = 1) {
  const int cols = (reach - 1) * g.sw + g.kw;  // columns -pw .. the last block's reach
  const int rows = (oh1 - oh0 - 1) * g.sh + g.kh;
  const size_t row_bytes = (static_cast<size_t>(cols) * g.in_c * elem_bytes + 63) / 64 * 64;
  const uint8_t* at =
      copy_rows_with_halo(g, in, oh0 * g.sh - g.ph, rows, cols, row_bytes, 64, buf, elem_bytes);
  return {at, row_bytes};
}

// out_w rounded up to whole blocks of `mr` pixels.
static inline int whole_blocks_reach(int out_w, int mr) {
  return (out_w + mr - 1) / mr * mr;
}

}  // namespace pactq::rt::kernels
