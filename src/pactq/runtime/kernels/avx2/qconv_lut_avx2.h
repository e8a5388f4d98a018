// The AVX2 table-lookup conv (qconv_lut_avx2.cpp): products of 1-2 bit
// weights and 1-2 bit activations by pshufb. A mode of the AVX2 kernel
// (qconv_avx2.cpp), which picks it at pack time when it applies.
#pragma once
#include "pactq/runtime/kernels/kernels.h"

namespace pactq::rt::kernels {

constexpr int kQConvModeLut = 3;  // PackedQConv::mode of a table-lookup packing

// wbits <= 2, activation codes 0..a_max with a_max = 1 or 3, an even number
// of input channels per group, >= 64 of them and >= 32 output channels (where
// it measured faster than the multiply-based modes on Zen 1).
bool lut_applicable(const ConvGeom& g, int wbits, int a_max);

// Whether the AVX2 kernel takes the lookup where it applies: only on CPUs
// whose shuffles outrun their byte multiplies (Zen 1: peak 4.2x; a Xeon with
// AMX run at AVX2: 1.2x, and the lookup conv reached 0.6x the multiply one).
bool lut_pays_on_this_cpu();
void lut_pack(const ConvGeom& g, const uint8_t* codes, int wbits, int a_max, PackedQConv* p);
void lut_run_rows(const PackedQConv& p, const ConvGeom& g, const uint8_t* in, const Epilogue& e,
                  void* out, int oh0, int oh1);

}  // namespace pactq::rt::kernels
