// The AVX2 table-lookup conv (qconv_lut_avx2.cpp): products of 1-2 bit
// weights and 1-3 bit activations by pshufb. A mode of the AVX2 kernel
// (qconv_avx2.cpp), which picks it at pack time when it applies.
#pragma once
#include "pactq/runtime/kernels/kernels.h"

namespace pactq::rt::kernels {

constexpr int kQConvModeLut = 3;        // PackedQConv::mode: activations index fixed tables
constexpr int kQConvModeLutPixels = 4;  // weights make the tables, pixels are the lanes

// wbits <= 2, activation codes 0..a_max with a_max = 1, 3 or 7, an even
// number of input channels per group.
bool lut_applicable(const ConvGeom& g, int wbits, int a_max);
void lut_pack(const ConvGeom& g, const uint8_t* codes, int wbits, int a_max, PackedQConv* p);
void lut_run_rows(const PackedQConv& p, const uint8_t* in, const Epilogue& e, void* out, int oh0,
                  int oh1);

// The transposed orientation: 1-2 bit weights, 1-2 bit activations, no
// groups, an even channel count, rows of >= 8 outputs and tables (16 bytes
// per output channel, tap and channel pair) of at most 512 KiB.
bool lut_pixels_applicable(const ConvGeom& g, int wbits, int a_max);
void lut_pixels_pack(const ConvGeom& g, const uint8_t* codes, int wbits, int a_max,
                     PackedQConv* p);
void lut_pixels_run_rows(const PackedQConv& p, const uint8_t* in, const Epilogue& e, void* out,
                         int oh0, int oh1);

}  // namespace pactq::rt::kernels
