// AMX quantized conv (NHWC, indirect through the zero-halo rows; no im2col).
//
// One `tdpbusd` multiplies a tile of 16 output pixels x 64 K bytes (u8
// activation codes) by a tile of 16 K quads x 16 output channels (s8 weights)
// into 16 x 16 int32 sums: 16384 products, where one AVX-512 `vpdpbusd` does
// 64. K runs along a kernel row: with one group, the kw taps of kernel row r
// are kw x in_c contiguous input bytes, so the A tile of M pixels is one
// strided load (row m at m x sw x in_c) per 64-byte chunk of that run; the
// chunk past the run's end reads bytes whose weights are packed as 0. Output
// rows' pixels are taken 16 at a time along the row (a block past the row
// end computes on halo zeros and is not stored).
//
// Tiles: 4 accumulators (tmm0-3), A in tmm4-5, B in tmm6-7, blocked 2 pixel
// blocks x 2 channel blocks, 4 x 1 (16-channel layers) or 1 x 4 (one pixel
// block: linear layers at small batch), always 4 accumulators so 4
// independent tdpbusd chains hide its latency. Padding blocks repeat a real
// operand and are not stored.
//
// Packed weights (mode kQConvModeAmx): [channel block][kernel row][chunk] tiles of
// 16 quads x 64 bytes (byte 4 lane + j of quad row kr: channel 16 block +
// lane, K index 64 chunk + 4 kr + j = s in_c + ci), value 2q - n_w. Layers the
// tiles do not serve (groups > 1, 8-bit weights whose 2q - 255 is not an
// int8) are packed and run by the AVX-512 VNNI kernel.
//
// The epilogue stores each accumulator tile and runs the AVX-512 epilogue16
// on its rows: bit-identical to the scalar epilogue_store.
#include <immintrin.h>

#include "pactq/runtime/kernels/amx/qconv_amx.h"
#include "pactq/runtime/kernels/avx512/epilogue_avx512.h"
#include "pactq/runtime/kernels/halo_rows.h"
#include "pactq/runtime/kernels/kernels.h"

namespace pactq::rt::kernels {

const QConvKernel& qconv_avx512_vnni_kernel_impl();  // kernels/avx512/qconv_vnni.cpp

namespace {

constexpr int kTile = 16;   // pixels (A, C rows), channels (C columns), quads (B rows)
constexpr int kChunk = 64;  // K bytes per tile row
constexpr size_t kTileBytes = 1024;

bool amx_serves(const ConvGeom& g, int wbits) {
  return g.groups == 1 && g.in_c == g.cin_g && format::max_code(wbits) <= 127;
}

void pack_amx(const ConvGeom& g, const uint8_t* codes, int wbits, int a_max, PackedQConv* p) {
  if (!amx_serves(g, wbits)) {
    qconv_avx512_vnni_kernel_impl().pack(g, codes, wbits, a_max, p);
    return;
  }
  p->g = g;
  p->wbits = wbits;
  p->n_w = format::max_code(wbits);
  p->a_max = a_max;
  p->mode = kQConvModeAmx;
  p->i16_steps = 0;
  const int run = g.kw * g.in_c;  // K bytes of one kernel row
  const int chunks = (run + kChunk - 1) / kChunk;
  p->cq = chunks;
  const int nb = (g.cout_g + kTile - 1) / kTile;
  p->w8.assign(static_cast<size_t>(nb) * g.kh * chunks * kTileBytes, 0);
  p->w16.clear();
  p->zeros.clear();
  p->lut.clear();
  for (int oc = 0; oc < g.cout_g; ++oc) {
    const int blk = oc / kTile, lane = oc % kTile;
    for (int ci = 0; ci < g.cin_g; ++ci)
      for (int r = 0; r < g.kh; ++r)
        for (int s = 0; s < g.kw; ++s) {
          const int q = codes[((static_cast<size_t>(oc) * g.cin_g + ci) * g.kh + r) * g.kw + s];
          const int k = s * g.in_c + ci;
          const size_t tile = (static_cast<size_t>(blk) * g.kh + r) * chunks + k / kChunk;
          p->w8[tile * kTileBytes + (k % kChunk) / 4 * 64 + lane * 4 + k % 4] =
              static_cast<int8_t>(2 * q - p->n_w);
        }
  }
}

// The tile palette: 8 tiles of 16 rows x 64 bytes.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

void configure_tiles() {
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) {
    cfg.colsb[t] = kChunk;
    cfg.rows[t] = kTile;
  }
  // ldtilecfg's operand names only the config's first bytes: make sure all
  // 64 are in memory first.
  __asm__ volatile("" ::: "memory");
  _tile_loadconfig(&cfg);
}

// 16 pixels of one output row: where their inputs start (kernel row 0,
// chunk 0), where they go, and how many exist (0: a padding block).
struct PixelBlock {
  const uint8_t* a;
  int oh, ow0, pixels;
};

struct Run {
  const PackedQConv& p;
  const ConvGeom& g;
  const Epilogue& e;
  void* out;
  size_t row_bytes;  // halo row
  size_t step;       // bytes between two output pixels' inputs: sw x in_c
  int nb;            // channel blocks

  const int8_t* weights(int blk) const {
    return p.w8.data() + static_cast<size_t>(blk) * g.kh * p.cq * kTileBytes;
  }

  // Stores accumulator tile rows (already in `acc`) through the epilogue.
  void emit(const int32_t* acc, const PixelBlock& m, int blk) const {
    if (blk >= nb) return;
    const int c0 = blk * kTile;
    const int valid = g.cout_g - c0 < kTile ? g.cout_g - c0 : kTile;
    const __mmask16 mask = static_cast<__mmask16>((1u << valid) - 1u);
    for (int i = 0; i < m.pixels; ++i) {
      const int ow = m.ow0 + i;
      const size_t idx = (static_cast<size_t>(m.oh) * g.out_w + ow) * g.out_c + c0;
      const __m512i v = _mm512_load_si512(acc + i * kTile);
      epilogue16(e, _mm512_cvtepi32_ps(v), m.oh, ow, c0, mask, out, idx);
    }
  }

  // 2 pixel blocks x channel blocks n0, n0 + 1.
  void tiles_2x2(const PixelBlock& m0, const PixelBlock& m1, int n0) const {
    const int n1 = n0 + 1 < nb ? n0 + 1 : n0;
    const int8_t* b0 = weights(n0);
    const int8_t* b1 = weights(n1);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int r = 0; r < g.kh; ++r)
      for (int c = 0; c < p.cq; ++c) {
        const size_t off = r * row_bytes + static_cast<size_t>(c) * kChunk;
        _tile_loadd(4, m0.a + off, step);
        _tile_loadd(6, b0, 64);
        _tile_loadd(5, m1.a + off, step);
        _tile_loadd(7, b1, 64);
        b0 += kTileBytes;
        b1 += kTileBytes;
        _tile_dpbusd(0, 4, 6);
        _tile_dpbusd(1, 4, 7);
        _tile_dpbusd(2, 5, 6);
        _tile_dpbusd(3, 5, 7);
      }
    alignas(64) int32_t acc[kTile * kTile];
    _tile_stored(0, acc, 64);
    emit(acc, m0, n0);
    _tile_stored(1, acc, 64);
    emit(acc, m0, n0 + 1);
    _tile_stored(2, acc, 64);
    emit(acc, m1, n0);
    _tile_stored(3, acc, 64);
    emit(acc, m1, n0 + 1);
  }

  // 4 pixel blocks x channel block n0.
  void tiles_4x1(const PixelBlock* m, int n0) const {
    const int8_t* b = weights(n0);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int r = 0; r < g.kh; ++r)
      for (int c = 0; c < p.cq; ++c) {
        const size_t off = r * row_bytes + static_cast<size_t>(c) * kChunk;
        _tile_loadd(6, b, 64);
        b += kTileBytes;
        _tile_loadd(4, m[0].a + off, step);
        _tile_loadd(5, m[1].a + off, step);
        _tile_dpbusd(0, 4, 6);
        _tile_dpbusd(1, 5, 6);
        _tile_loadd(4, m[2].a + off, step);
        _tile_loadd(5, m[3].a + off, step);
        _tile_dpbusd(2, 4, 6);
        _tile_dpbusd(3, 5, 6);
      }
    alignas(64) int32_t acc[kTile * kTile];
    _tile_stored(0, acc, 64);
    emit(acc, m[0], n0);
    _tile_stored(1, acc, 64);
    emit(acc, m[1], n0);
    _tile_stored(2, acc, 64);
    emit(acc, m[2], n0);
    _tile_stored(3, acc, 64);
    emit(acc, m[3], n0);
  }

  // 1 pixel block x channel blocks n0 .. n0 + 3.
  void tiles_1x4(const PixelBlock& m, int n0) const {
    const int8_t* b[4];
    for (int j = 0; j < 4; ++j) b[j] = weights(n0 + j < nb ? n0 + j : n0);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int r = 0; r < g.kh; ++r)
      for (int c = 0; c < p.cq; ++c) {
        const size_t off = r * row_bytes + static_cast<size_t>(c) * kChunk;
        _tile_loadd(4, m.a + off, step);
        _tile_loadd(6, b[0], 64);
        _tile_loadd(7, b[1], 64);
        _tile_dpbusd(0, 4, 6);
        _tile_dpbusd(1, 4, 7);
        _tile_loadd(6, b[2], 64);
        _tile_loadd(7, b[3], 64);
        _tile_dpbusd(2, 4, 6);
        _tile_dpbusd(3, 4, 7);
        for (auto& w : b) w += kTileBytes;
      }
    alignas(64) int32_t acc[kTile * kTile];
    _tile_stored(0, acc, 64);
    emit(acc, m, n0);
    _tile_stored(1, acc, 64);
    emit(acc, m, n0 + 1);
    _tile_stored(2, acc, 64);
    emit(acc, m, n0 + 2);
    _tile_stored(3, acc, 64);
    emit(acc, m, n0 + 3);
  }
};

void run_amx(const PackedQConv& p, const ConvGeom& g, const uint8_t* in, const Epilogue& e,
             void* out, int oh0, int oh1) {
  if (p.mode != kQConvModeAmx) {
    qconv_avx512_vnni_kernel_impl().run_rows(p, g, in, e, out, oh0, oh1);
    return;
  }
  if (oh1 <= oh0) return;
  thread_local std::vector<uint8_t> halo;
  const HaloRows h = copy_halo_rows(g, in, oh0, oh1, kTile, halo);
  const Run run{p,
                g,
                e,
                out,
                h.row_bytes,
                static_cast<size_t>(g.sw) * g.in_c,
                (g.cout_g + kTile - 1) / kTile};

  // The pixel blocks of rows [oh0, oh1), then padding blocks up to a
  // multiple of 4 (they repeat the last block's operand and store nothing).
  thread_local std::vector<PixelBlock> blocks;
  blocks.clear();
  for (int oh = oh0; oh < oh1; ++oh) {
    const uint8_t* rows = h.at + static_cast<size_t>(oh - oh0) * g.sh * h.row_bytes;
    for (int ow = 0; ow < g.out_w; ow += kTile)
      blocks.push_back({rows + ow * run.step, oh, ow, g.out_w - ow < kTile ? g.out_w - ow : kTile});
  }
  const size_t real = blocks.size();
  while (blocks.size() % 4 != 0) blocks.push_back({blocks.back().a, 0, 0, 0});

  // The halo rows are plain stores that the tile loads (asm without a
  // memory operand) must see.
  __asm__ volatile("" ::: "memory");
  configure_tiles();
  if (run.nb == 1) {
    for (size_t i = 0; i < real; i += 4) run.tiles_4x1(&blocks[i], 0);
  } else if (real == 1) {
    for (int n = 0; n < run.nb; n += 4) run.tiles_1x4(blocks[0], n);
  } else {
    for (size_t i = 0; i < real; i += 2)
      for (int n = 0; n < run.nb; n += 2) run.tiles_2x2(blocks[i], blocks[i + 1], n);
  }
  _tile_release();
}

}  // namespace

const QConvKernel& qconv_amx_kernel_impl() {
  static const QConvKernel k{"amx", pack_amx, run_amx};
  return k;
}

}  // namespace pactq::rt::kernels
