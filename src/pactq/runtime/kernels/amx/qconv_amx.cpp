// AMX quantized conv (NHWC, indirect through zero-halo input rows; no im2col).
//
// One `tdpbusd` multiplies a tile of 16 output pixels x 64 K bytes (u8
// activation codes) by a tile of 16 K quads x 16 output channels (s8 weights)
// into 16 x 16 int32 sums: 16384 products, where one AVX-512 `vpdpbusd` does
// 64. K runs along a kernel row: with one group, the kw taps of kernel row r
// are kw x in_c contiguous input bytes, so the A tile of 16 pixels is one
// strided load (row m at m x sw x in_c) per chunk of that run (64 bytes, or
// the whole run when it is shorter); bytes past the run's end meet weights
// packed as 0. Pixels are taken 16 at a time along each output row or, at
// stride 1, through the rows of a padded plane (run_amx); pixels past a row
// end compute on halo zeros and are not stored.
//
// Tiles: 4 accumulators (tmm0-3), A in tmm4-5, B in tmm6-7, blocked 2 pixel
// blocks x 2 channel blocks, 4 x 1 (16-channel layers) or 1 x 4 (one pixel
// block: linear layers at small batch), always 4 accumulators so 4
// independent tdpbusd chains hide its latency. Padding blocks repeat a real
// operand and are not stored.
//
// Packed weights (mode kQConvModeAmx): [channel block][kernel row][chunk]
// tiles of chunk / 4 quad rows x 64 bytes (byte 4 lane + j of quad row kr:
// channel 16 block + lane, K index chunk x c + 4 kr + j = s in_c + ci), value
// 2q - n_w. Layers the tiles do not serve (groups > 1, 8-bit weights whose
// 2q - 255 is not an int8) are packed and run by the AVX-512 VNNI kernel.
//
// The epilogue stores each accumulator tile and runs the AVX-512 epilogue16
// on its rows: bit-identical to the scalar epilogue_store.
#include <immintrin.h>

#include <array>

#include "pactq/runtime/kernels/amx/qconv_amx.h"
#include "pactq/runtime/kernels/avx512/epilogue_avx512.h"
#include "pactq/runtime/kernels/halo_rows.h"
#include "pactq/runtime/kernels/kernels.h"

namespace pactq::rt::kernels {

const QConvKernel& qconv_avx512_vnni_kernel_impl();  // kernels/avx512/qconv_vnni.cpp

namespace {

constexpr int kTile = 16;   // pixels (A, C rows), channels (C columns), quads (B rows)
constexpr int kChunk = 64;  // K bytes per tile row, at most
constexpr size_t kWeightsPastL2 = size_t{2} << 20;

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
  // A run shorter than a full tile row takes tiles that long: rows of 48
  // bytes 16 apart (16-channel 3x3) straddle a cache line half as often as
  // rows of 64, and tileloadd costs by the lines it touches (6.4 vs 11.2 ns).
  const int chunk = run < kChunk ? (run + 3) / 4 * 4 : kChunk;
  const int chunks = (run + chunk - 1) / chunk;
  const size_t tile_bytes = static_cast<size_t>(chunk) / 4 * 64;
  p->cq = chunks;
  p->tile_k = chunk;
  const int nb = (g.cout_g + kTile - 1) / kTile;
  p->w8.assign(static_cast<size_t>(nb) * g.kh * chunks * tile_bytes, 0);
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
          const size_t tile = (static_cast<size_t>(blk) * g.kh + r) * chunks + k / chunk;
          p->w8[tile * tile_bytes + (k % chunk) / 4 * 64 + lane * 4 + k % 4] =
              static_cast<int8_t>(2 * q - p->n_w);
        }
  }
}

// The tile palette: accumulators tmm0-3 of 16 x 16 int32, A tiles tmm4-5 of
// 16 pixels x `chunk` bytes, B tiles tmm6-7 of chunk / 4 quads x 16 channels.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

void configure_tiles(int chunk) {
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) {
    cfg.colsb[t] = static_cast<uint16_t>(t == 4 || t == 5 ? chunk : 64);
    cfg.rows[t] = static_cast<uint8_t>(t >= 6 ? chunk / 4 : kTile);
  }
  // ldtilecfg's operand names only the config's first bytes: make sure all
  // 64 are in memory first.
  __asm__ volatile("" ::: "memory");
  _tile_loadconfig(&cfg);
}

// 16 consecutive "virtual" pixels of the call's rows, numbered v = (oh -
// oh0) W + ow over a row width W >= out_w: `a` is where the first one's
// inputs start (kernel row 0, chunk 0); the others follow every `step`
// bytes. Pixels with ow >= out_w (or v past the last row) are computed and
// not stored; a padding block starts past the end.
struct PixelBlock {
  const uint8_t* a;
  int v0;
};

struct Run {
  const PackedQConv& p;
  const ConvGeom& g;
  const Epilogue& e;
  void* out;
  size_t row_bytes;  // between kernel rows in the halo copy
  size_t step;       // between two consecutive pixels' inputs
  int nb;            // channel blocks
  int oh0, width, v_end;

  size_t tile_bytes() const { return static_cast<size_t>(p.tile_k) / 4 * 64; }
  const int8_t* weights(int blk) const {
    return p.w8.data() + static_cast<size_t>(blk) * g.kh * p.cq * tile_bytes();
  }

  // Stores accumulator tile rows (already in `acc`) through the epilogue.
  void emit(const int32_t* acc, const PixelBlock& m, int blk) const {
    if (blk >= nb) return;
    const int c0 = blk * kTile;
    const int valid = g.cout_g - c0 < kTile ? g.cout_g - c0 : kTile;
    const Epilogue16Channels channels =
        epilogue16_channels(e, c0, static_cast<__mmask16>((1u << valid) - 1u));
    const int count = v_end - m.v0 < kTile ? v_end - m.v0 : kTile;
    const int out_w = g.out_w, out_c = g.out_c, wrap = width;
    with_epilogue16_form(e, channels, out, [&](auto&& store) {
      int oh = oh0 + m.v0 / wrap, ow = m.v0 % wrap;
      for (int i = 0; i < count; ++i, ++ow) {
        if (ow == wrap) ow = 0, ++oh;
        if (ow >= out_w) continue;
        const size_t idx = (static_cast<size_t>(oh) * out_w + ow) * out_c + c0;
        store(_mm512_cvtepi32_ps(_mm512_load_si512(acc + i * kTile)), oh, ow, idx);
      }
    });
  }

  static void zero_accumulators() {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
  }

  // Accumulator t holds pixel block *m[t] x channel block n[t].
  void store_and_emit(const std::array<const PixelBlock*, 4>& m,
                      const std::array<int, 4>& n) const {
    alignas(64) int32_t acc[kTile * kTile];
    _tile_stored(0, acc, 64);
    emit(acc, *m[0], n[0]);
    _tile_stored(1, acc, 64);
    emit(acc, *m[1], n[1]);
    _tile_stored(2, acc, 64);
    emit(acc, *m[2], n[2]);
    _tile_stored(3, acc, 64);
    emit(acc, *m[3], n[3]);
  }

  // 2 pixel blocks x channel blocks n0, n0 + 1.
  void tiles_2x2(const PixelBlock& m0, const PixelBlock& m1, int n0) const {
    const int n1 = n0 + 1 < nb ? n0 + 1 : n0;
    const int8_t* b0 = weights(n0);
    const int8_t* b1 = weights(n1);
    zero_accumulators();
    for (int r = 0; r < g.kh; ++r)
      for (int c = 0; c < p.cq; ++c) {
        const size_t off = r * row_bytes + static_cast<size_t>(c) * p.tile_k;
        _tile_loadd(4, m0.a + off, step);
        _tile_loadd(6, b0, 64);
        _tile_loadd(5, m1.a + off, step);
        _tile_loadd(7, b1, 64);
        b0 += tile_bytes();
        b1 += tile_bytes();
        _tile_dpbusd(0, 4, 6);
        _tile_dpbusd(1, 4, 7);
        _tile_dpbusd(2, 5, 6);
        _tile_dpbusd(3, 5, 7);
      }
    store_and_emit({&m0, &m0, &m1, &m1}, {n0, n0 + 1, n0, n0 + 1});
  }

  // 4 pixel blocks x channel block n0.
  void tiles_4x1(const PixelBlock* m, int n0) const {
    const int8_t* b = weights(n0);
    zero_accumulators();
    for (int r = 0; r < g.kh; ++r)
      for (int c = 0; c < p.cq; ++c) {
        const size_t off = r * row_bytes + static_cast<size_t>(c) * p.tile_k;
        _tile_loadd(6, b, 64);
        b += tile_bytes();
        _tile_loadd(4, m[0].a + off, step);
        _tile_loadd(5, m[1].a + off, step);
        _tile_dpbusd(0, 4, 6);
        _tile_dpbusd(1, 5, 6);
        _tile_loadd(4, m[2].a + off, step);
        _tile_loadd(5, m[3].a + off, step);
        _tile_dpbusd(2, 4, 6);
        _tile_dpbusd(3, 5, 6);
      }
    store_and_emit({&m[0], &m[1], &m[2], &m[3]}, {n0, n0, n0, n0});
  }

  // 1 pixel block x channel blocks n0 .. n0 + 3.
  void tiles_1x4(const PixelBlock& m, int n0) const {
    const int8_t* b[4];
    for (int j = 0; j < 4; ++j) b[j] = weights(n0 + j < nb ? n0 + j : n0);
    zero_accumulators();
    for (int r = 0; r < g.kh; ++r)
      for (int c = 0; c < p.cq; ++c) {
        const size_t off = r * row_bytes + static_cast<size_t>(c) * p.tile_k;
        _tile_loadd(4, m.a + off, step);
        _tile_loadd(6, b[0], 64);
        _tile_loadd(7, b[1], 64);
        _tile_dpbusd(0, 4, 6);
        _tile_dpbusd(1, 4, 7);
        _tile_loadd(6, b[2], 64);
        _tile_loadd(7, b[3], 64);
        _tile_dpbusd(2, 4, 6);
        _tile_dpbusd(3, 4, 7);
        for (auto& w : b) w += tile_bytes();
      }
    store_and_emit({&m, &m, &m, &m}, {n0, n0 + 1, n0 + 2, n0 + 3});
  }
};

// For stride 1: the input rows as one plane of row pitch W = out_w + kw - 1
// (the padded width), so output pixel (oh, ow) reads from (oh W + ow) x in_c
// on: consecutive pixels are in_c bytes apart across row ends too, and
// 16-pixel blocks run on through the rows, computing kw - 1 discarded
// pixels per row instead of a partial block per row (7-pixel rows: 4 blocks
// per 7 rows, not 7). Sized for the reads of the last block's pixels.
HaloRows copy_halo_plane(const ConvGeom& g, const uint8_t* in, int oh0, int oh1, int width,
                         AlignedVector<uint8_t>& buf) {
  const size_t row_bytes = static_cast<size_t>(width) * g.in_c;
  const size_t tail = static_cast<size_t>(kTile + g.kw) * g.in_c + kChunk;
  const uint8_t* at =
      copy_rows_with_halo(g, in, oh0 - g.ph, oh1 - oh0 + g.kh - 1, width, row_bytes, tail, buf);
  return {at, row_bytes};
}

void run_amx(const PackedQConv& p, const ConvGeom& g, const uint8_t* in, const Epilogue& e,
             void* out, int oh0, int oh1) {
  if (p.mode != kQConvModeAmx) {
    qconv_avx512_vnni_kernel_impl().run_rows(p, g, in, e, out, oh0, oh1);
    return;
  }
  if (oh1 <= oh0) return;
  const int rows = oh1 - oh0;
  // Blocks along each row (a partial one per row when out_w % 16 != 0), or,
  // at stride 1 when it takes fewer, blocks through the plane.
  const int per_row = (g.out_w + kTile - 1) / kTile;
  const int row_blocks = rows * per_row;
  const int plane_width = g.out_w + g.kw - 1;  // the padded input width
  const int plane_blocks = (rows * plane_width + kTile - 1) / kTile;
  const bool plane = g.sh == 1 && g.sw == 1 && plane_blocks < row_blocks;
  thread_local AlignedVector<uint8_t> halo;
  HaloRows h;
  int width;
  if (plane) {
    h = copy_halo_plane(g, in, oh0, oh1, plane_width, halo);
    width = plane_width;
  } else {
    h = copy_halo_rows(g, in, oh0, oh1, whole_blocks_reach(g.out_w, kTile), halo);
    width = per_row * kTile;
  }
  const size_t step = static_cast<size_t>(g.sw) * g.in_c;
  const Run run{p,   g,     e,           out, h.row_bytes, step, (g.cout_g + kTile - 1) / kTile,
                oh0, width, rows * width};

  // Padding blocks up to a multiple of 4 repeat the last operand, store nothing.
  const size_t real = plane ? static_cast<size_t>(plane_blocks) : static_cast<size_t>(row_blocks);
  thread_local std::vector<PixelBlock> block_list;
  block_list.resize((real + 3) / 4 * 4);
  PixelBlock* blocks = block_list.data();
  if (plane) {
    for (size_t i = 0; i < real; ++i) {
      const int v = static_cast<int>(i) * kTile;
      blocks[i] = {h.at + v * step, v};
    }
  } else {
    for (int r = 0, i = 0; r < rows; ++r) {
      const uint8_t* at = h.at + static_cast<size_t>(r) * g.sh * h.row_bytes;
      for (int ow = 0; ow < g.out_w; ow += kTile) blocks[i++] = {at + ow * step, r * width + ow};
    }
  }
  for (size_t i = real; i < block_list.size(); ++i) blocks[i] = {blocks[real - 1].a, run.v_end};

  // The halo rows are plain stores that the tile loads (asm without a
  // memory operand) must see.
  __asm__ volatile("" ::: "memory");
  configure_tiles(p.tile_k);
  // Weights past a core's L2 (2 MiB on Sapphire Rapids; PreAct-ResNet18's
  // 512 -> 512 convs, 2.3 MiB) are streamed once per pass over the pixel
  // blocks: 4 x 1 blocks, channel block outermost, read them once per call
  // where 2 x 2 read them once per pixel pair (those convs 1.14-1.27 -> 0.91-1.05 ms,
  // batch 16, 2 threads; smaller layers measured slower this way).
  const bool weights_past_l2 = p.w8.size() > kWeightsPastL2;
  if (run.nb == 1 || (weights_past_l2 && real >= 4)) {
    for (int n = 0; n < run.nb; ++n)
      for (size_t i = 0; i < real; i += 4) run.tiles_4x1(&blocks[i], n);
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
