// The AMX quantized conv (qconv_amx.cpp): what tests need to know of it.
#pragma once

namespace pactq::rt::kernels {

// PackedQConv::mode of a layer packed as AMX tiles; the layers the tiles do
// not serve (groups > 1, 8-bit weights) keep the AVX-512 VNNI modes 1 and 2.
constexpr int kQConvModeAmx = 4;

}  // namespace pactq::rt::kernels
