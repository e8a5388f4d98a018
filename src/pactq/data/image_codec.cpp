#include "pactq/data/image_codec.h"

#include <png.h>
#include <turbojpeg.h>

#include <cstring>
#include <iostream>
#include <memory>

#include "pactq/common/format.h"
#include "pactq/data/dataset.h"

namespace pactq::data {
namespace {

struct TjHandle {
  tjhandle h;
  explicit TjHandle(tjhandle handle) : h(handle) {}
  ~TjHandle() {
    if (h) tjDestroy(h);
  }
  TjHandle(const TjHandle&) = delete;
  TjHandle& operator=(const TjHandle&) = delete;
};

// HWC interleaved -> CHW tensor.
at::Tensor hwc_to_chw(const uint8_t* src, int64_t h, int64_t w, int64_t c) {
  at::Tensor out = at::empty({c, h, w}, at::kByte);
  uint8_t* dst = out.data_ptr<uint8_t>();
  const int64_t plane = h * w;
  for (int64_t i = 0; i < plane; ++i) {
    for (int64_t k = 0; k < c; ++k) dst[k * plane + i] = src[i * c + k];
  }
  return out;
}

at::Tensor decode_jpeg(const std::vector<uint8_t>& bytes, const std::string& path) {
  TjHandle tj(tjInitDecompress());
  if (!tj.h) fail(path, "tjInitDecompress failed");
  int w = 0, h = 0, subsamp = 0, colorspace = 0;
  auto* data = const_cast<unsigned char*>(bytes.data());
  const auto size = static_cast<unsigned long>(bytes.size());
  if (tjDecompressHeader3(tj.h, data, size, &w, &h, &subsamp, &colorspace) != 0) {
    fail(path, pactq::format("undecodable JPEG header: {}", tjGetErrorStr2(tj.h)));
  }
  if (w <= 0 || h <= 0) fail(path, pactq::format("undecodable JPEG: invalid size {}x{}", w, h));
  const bool cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
  const int pf = cmyk ? TJPF_CMYK : TJPF_RGB;
  const int bpp = tjPixelSize[pf];
  std::vector<uint8_t> buf(static_cast<size_t>(w) * h * bpp);
  if (tjDecompress2(tj.h, data, size, buf.data(), w, 0, h, pf, TJFLAG_ACCURATEDCT) != 0) {
    if (tjGetErrorCode(tj.h) == TJERR_FATAL) {
      fail(path, pactq::format("undecodable JPEG: {}", tjGetErrorStr2(tj.h)));
    }
    // Recoverable (e.g. premature end of data): keep the image, but say so.
    std::cerr << "pactq: warning: " << path
              << ": JPEG decoded with a warning: " << tjGetErrorStr2(tj.h) << std::endl;
  }
  if (cmyk) {  // Adobe-style inverted CMYK -> RGB
    std::vector<uint8_t> rgb(static_cast<size_t>(w) * h * 3);
    for (size_t i = 0; i < static_cast<size_t>(w) * h; ++i) {
      const int k = buf[i * 4 + 3];
      for (int c = 0; c < 3; ++c) rgb[i * 3 + c] = static_cast<uint8_t>(buf[i * 4 + c] * k / 255);
    }
    return hwc_to_chw(rgb.data(), h, w, 3);
  }
  return hwc_to_chw(buf.data(), h, w, 3);
}

at::Tensor decode_png(const std::vector<uint8_t>& bytes, const std::string& path) {
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&image, bytes.data(), bytes.size())) {
    std::string msg = image.message;
    png_image_free(&image);
    fail(path, "undecodable PNG header: " + msg);
  }
  image.format = PNG_FORMAT_RGB;
  const int64_t h = image.height, w = image.width;
  std::vector<uint8_t> buf(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, buf.data(), 0, nullptr)) {
    std::string msg = image.message;
    png_image_free(&image);
    fail(path, "undecodable PNG: " + msg);
  }
  return hwc_to_chw(buf.data(), h, w, 3);
}

at::Tensor chw_to_hwc_contig(const at::Tensor& image) {
  TORCH_CHECK(image.dim() == 3 && image.scalar_type() == at::kByte,
              "encode: expected uint8 [C,H,W], got ", image.sizes(), " ", image.scalar_type());
  return image.permute({1, 2, 0}).contiguous();
}

}  // namespace

ImageFormat sniff_image_format(const uint8_t* data, size_t size) {
  if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return ImageFormat::Jpeg;
  static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (size >= 8 && std::memcmp(data, kPng, 8) == 0) return ImageFormat::Png;
  return ImageFormat::Unknown;
}

at::Tensor decode_image(const std::vector<uint8_t>& bytes, const std::string& path) {
  switch (sniff_image_format(bytes.data(), bytes.size())) {
    case ImageFormat::Jpeg:
      return decode_jpeg(bytes, path);
    case ImageFormat::Png:
      return decode_png(bytes, path);
    default:
      fail(path, pactq::format("undecodable image: not a JPEG or PNG ({} bytes, bad signature)",
                               bytes.size()));
  }
}

std::pair<int64_t, int64_t> probe_image(const std::vector<uint8_t>& bytes,
                                        const std::string& path) {
  switch (sniff_image_format(bytes.data(), bytes.size())) {
    case ImageFormat::Jpeg: {
      TjHandle tj(tjInitDecompress());
      int w = 0, h = 0, subsamp = 0, colorspace = 0;
      if (!tj.h || tjDecompressHeader3(tj.h, const_cast<unsigned char*>(bytes.data()),
                                       static_cast<unsigned long>(bytes.size()), &w, &h, &subsamp,
                                       &colorspace) != 0) {
        fail(path, pactq::format("undecodable JPEG header: {}",
                                 tj.h ? tjGetErrorStr2(tj.h) : "tjInitDecompress failed"));
      }
      if (w <= 0 || h <= 0) fail(path, pactq::format("undecodable JPEG: invalid size {}x{}", w, h));
      return {h, w};
    }
    case ImageFormat::Png: {
      png_image image;
      std::memset(&image, 0, sizeof(image));
      image.version = PNG_IMAGE_VERSION;
      if (!png_image_begin_read_from_memory(&image, bytes.data(), bytes.size())) {
        std::string msg = image.message;
        png_image_free(&image);
        fail(path, "undecodable PNG header: " + msg);
      }
      std::pair<int64_t, int64_t> hw{image.height, image.width};
      png_image_free(&image);
      return hw;
    }
    default:
      fail(path, pactq::format("undecodable image: not a JPEG or PNG ({} bytes, bad signature)",
                               bytes.size()));
  }
}

std::vector<uint8_t> encode_jpeg(const at::Tensor& image, int quality) {
  at::Tensor hwc = chw_to_hwc_contig(image);
  const int c = static_cast<int>(hwc.size(2));
  TORCH_CHECK(c == 1 || c == 3, "encode_jpeg: expected 1 or 3 channels, got ", c);
  TjHandle tj(tjInitCompress());
  TORCH_CHECK(tj.h, "tjInitCompress failed");
  unsigned char* out = nullptr;
  unsigned long out_size = 0;
  const int w = static_cast<int>(hwc.size(1)), h = static_cast<int>(hwc.size(0));
  const int rc =
      tjCompress2(tj.h, hwc.data_ptr<uint8_t>(), w, 0, h, c == 3 ? TJPF_RGB : TJPF_GRAY, &out,
                  &out_size, c == 3 ? TJSAMP_444 : TJSAMP_GRAY, quality, TJFLAG_ACCURATEDCT);
  if (rc != 0) {
    std::string msg = tjGetErrorStr2(tj.h);
    if (out) tjFree(out);
    TORCH_CHECK(false, "tjCompress2 failed: ", msg);
  }
  std::vector<uint8_t> bytes(out, out + out_size);
  tjFree(out);
  return bytes;
}

std::vector<uint8_t> encode_png(const at::Tensor& image) {
  at::Tensor hwc = chw_to_hwc_contig(image);
  const int64_t c = hwc.size(2);
  TORCH_CHECK(c == 1 || c == 3, "encode_png: expected 1 or 3 channels, got ", c);
  png_image img;
  std::memset(&img, 0, sizeof(img));
  img.version = PNG_IMAGE_VERSION;
  img.width = static_cast<png_uint_32>(hwc.size(1));
  img.height = static_cast<png_uint_32>(hwc.size(0));
  img.format = c == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  png_alloc_size_t size = 0;
  TORCH_CHECK(
      png_image_write_to_memory(&img, nullptr, &size, 0, hwc.data_ptr<uint8_t>(), 0, nullptr),
      "png_image_write_to_memory (size) failed: ", img.message);
  std::vector<uint8_t> bytes(size);
  TORCH_CHECK(
      png_image_write_to_memory(&img, bytes.data(), &size, 0, hwc.data_ptr<uint8_t>(), 0, nullptr),
      "png_image_write_to_memory failed: ", img.message);
  bytes.resize(size);
  return bytes;
}

}  // namespace pactq::data
