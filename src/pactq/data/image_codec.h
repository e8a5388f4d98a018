// JPEG (libturbojpeg) and PNG (libpng) decoding to uint8 CHW RGB tensors,
// plus encoders used by tests and tools. Thread-safe: no shared state.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace pactq::data {

enum class ImageFormat { Unknown, Jpeg, Png };
ImageFormat sniff_image_format(const uint8_t* data, size_t size);

// Decodes JPEG or PNG bytes to uint8 [3, H, W] (grey, palette, alpha, 16-bit
// and CMYK inputs are converted to 8-bit RGB). Throws DataError naming path.
at::Tensor decode_image(const std::vector<uint8_t>& bytes, const std::string& path);

// Parses only the header; returns {height, width} or throws DataError naming
// path. Cheap check used when an image folder is opened.
std::pair<int64_t, int64_t> probe_image(const std::vector<uint8_t>& bytes, const std::string& path);

// image: uint8 [C, H, W] with C = 1 or 3.
std::vector<uint8_t> encode_jpeg(const at::Tensor& image, int quality = 95);
std::vector<uint8_t> encode_png(const at::Tensor& image);

}  // namespace pactq::data
