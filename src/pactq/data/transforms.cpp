#include "pactq/data/transforms.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "pactq/common/format.h"

namespace pactq::data {
namespace {

void check_u8_chw(const at::Tensor& image, const char* what) {
  if (image.dim() != 3 || image.scalar_type() != at::kByte) {
    throw DataError(pactq::format("{}: expected a uint8 [C,H,W] image, got {} dims of {}", what,
                                  image.dim(), c10::toString(image.scalar_type())));
  }
}

// One axis of a separable resample: for each output index the first source
// index and the normalised weights.
struct Coeffs {
  std::vector<int64_t> start;
  std::vector<int64_t> count;
  std::vector<float> weights;  // out_size * max_count
  int64_t max_count = 0;
};

Coeffs make_coeffs(double in0, double in_len, int64_t in_size, int64_t out_size) {
  Coeffs c;
  const double scale = in_len / static_cast<double>(out_size);
  const double filterscale = std::max(scale, 1.0);
  const double support = filterscale;  // triangle filter, radius 1
  c.max_count = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  c.start.resize(out_size);
  c.count.resize(out_size);
  c.weights.assign(out_size * c.max_count, 0.0f);
  for (int64_t i = 0; i < out_size; ++i) {
    const double center = in0 + (static_cast<double>(i) + 0.5) * scale;
    int64_t lo = static_cast<int64_t>(std::floor(center - support + 0.5));
    int64_t hi = static_cast<int64_t>(std::floor(center + support + 0.5));
    lo = std::clamp<int64_t>(lo, 0, in_size - 1);
    hi = std::clamp<int64_t>(hi, lo + 1, in_size);
    int64_t n = std::min(hi - lo, c.max_count);
    double total = 0;
    float* w = c.weights.data() + i * c.max_count;
    for (int64_t k = 0; k < n; ++k) {
      const double d = (static_cast<double>(lo + k) + 0.5 - center) / filterscale;
      const double v = std::max(0.0, 1.0 - std::abs(d));
      w[k] = static_cast<float>(v);
      total += v;
    }
    if (total <= 0) {  // box entirely between sample centres at an edge
      w[0] = 1.0f;
      for (int64_t k = 1; k < n; ++k) w[k] = 0.0f;
      total = 1.0;
    }
    for (int64_t k = 0; k < n; ++k) w[k] = static_cast<float>(w[k] / total);
    c.start[i] = lo;
    c.count[i] = n;
  }
  return c;
}

uint8_t to_u8(float v) {
  return static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L));
}

}  // namespace

at::Tensor hflip(const at::Tensor& image) {
  check_u8_chw(image, "hflip");
  at::Tensor src = image.contiguous();
  const int64_t c = src.size(0), h = src.size(1), w = src.size(2);
  at::Tensor out = at::empty_like(src);
  const uint8_t* s = src.data_ptr<uint8_t>();
  uint8_t* d = out.data_ptr<uint8_t>();
  for (int64_t row = 0; row < c * h; ++row) {
    for (int64_t x = 0; x < w; ++x) d[row * w + x] = s[row * w + (w - 1 - x)];
  }
  return out;
}

at::Tensor pad_crop(const at::Tensor& image, int64_t pad, int64_t top, int64_t left) {
  check_u8_chw(image, "pad_crop");
  TORCH_CHECK(pad >= 0 && top >= 0 && left >= 0 && top <= 2 * pad && left <= 2 * pad,
              "pad_crop: offsets must be in 0..2*pad");
  at::Tensor src = image.contiguous();
  const int64_t c = src.size(0), h = src.size(1), w = src.size(2);
  at::Tensor out = at::zeros_like(src);
  const uint8_t* s = src.data_ptr<uint8_t>();
  uint8_t* d = out.data_ptr<uint8_t>();
  for (int64_t k = 0; k < c; ++k) {
    for (int64_t y = 0; y < h; ++y) {
      const int64_t sy = y + top - pad;
      if (sy < 0 || sy >= h) continue;
      for (int64_t x = 0; x < w; ++x) {
        const int64_t sx = x + left - pad;
        if (sx >= 0 && sx < w) d[(k * h + y) * w + x] = s[(k * h + sy) * w + sx];
      }
    }
  }
  return out;
}

void resample_box(const at::Tensor& image, const Box& box, int64_t out_h, int64_t out_w,
                  float* dst) {
  check_u8_chw(image, "resample");
  at::Tensor src_t = image.contiguous();
  const int64_t c = src_t.size(0), h = src_t.size(1), w = src_t.size(2);
  const uint8_t* src = src_t.data_ptr<uint8_t>();
  const Coeffs cx = make_coeffs(box.x, box.w, w, out_w);
  const Coeffs cy = make_coeffs(box.y, box.h, h, out_h);
  const int64_t y0 = cy.start.front();
  const int64_t y1 = cy.start.back() + cy.count.back();  // rows touched: [y0, y1)
  std::vector<float> tmp(static_cast<size_t>(y1 - y0) * out_w);
  for (int64_t k = 0; k < c; ++k) {
    const uint8_t* plane = src + k * h * w;
    for (int64_t y = y0; y < y1; ++y) {  // horizontal pass
      const uint8_t* row = plane + y * w;
      float* trow = tmp.data() + (y - y0) * out_w;
      for (int64_t x = 0; x < out_w; ++x) {
        const float* wt = cx.weights.data() + x * cx.max_count;
        const uint8_t* p = row + cx.start[x];
        float acc = 0;
        for (int64_t j = 0; j < cx.count[x]; ++j) acc += wt[j] * p[j];
        trow[x] = acc;
      }
    }
    float* out = dst + k * out_h * out_w;
    for (int64_t y = 0; y < out_h; ++y) {  // vertical pass
      const float* wt = cy.weights.data() + y * cy.max_count;
      float* orow = out + y * out_w;
      std::fill(orow, orow + out_w, 0.0f);
      for (int64_t j = 0; j < cy.count[y]; ++j) {
        const float* trow = tmp.data() + (cy.start[y] + j - y0) * out_w;
        const float wj = wt[j];
        for (int64_t x = 0; x < out_w; ++x) orow[x] += wj * trow[x];
      }
    }
  }
}

at::Tensor resize(const at::Tensor& image, int64_t out_h, int64_t out_w) {
  check_u8_chw(image, "resize");
  TORCH_CHECK(out_h > 0 && out_w > 0, "resize: output size must be positive");
  const int64_t c = image.size(0);
  std::vector<float> buf(static_cast<size_t>(c * out_h * out_w));
  resample_box(image,
               Box{0, 0, static_cast<double>(image.size(1)), static_cast<double>(image.size(2))},
               out_h, out_w, buf.data());
  at::Tensor out = at::empty({c, out_h, out_w}, at::kByte);
  uint8_t* d = out.data_ptr<uint8_t>();
  for (size_t i = 0; i < buf.size(); ++i) d[i] = to_u8(buf[i]);
  return out;
}

at::Tensor resize_shorter(const at::Tensor& image, int64_t size) {
  check_u8_chw(image, "resize_shorter");
  const int64_t h = image.size(1), w = image.size(2);
  if (h <= w) return resize(image, size, std::max<int64_t>(1, std::llround(double(w) * size / h)));
  return resize(image, std::max<int64_t>(1, std::llround(double(h) * size / w)), size);
}

at::Tensor center_crop(const at::Tensor& image, int64_t h, int64_t w) {
  check_u8_chw(image, "center_crop");
  TORCH_CHECK(h <= image.size(1) && w <= image.size(2), "center_crop: crop larger than image");
  const int64_t top = (image.size(1) - h) / 2, left = (image.size(2) - w) / 2;
  return image.slice(1, top, top + h).slice(2, left, left + w).contiguous();
}

at::Tensor normalize(const at::Tensor& image, const std::vector<float>& mean,
                     const std::vector<float>& std) {
  check_u8_chw(image, "normalize");
  const int64_t c = image.size(0);
  TORCH_CHECK(static_cast<int64_t>(mean.size()) == c && static_cast<int64_t>(std.size()) == c,
              "normalize: need one mean/std per channel");
  at::Tensor src = image.contiguous();
  at::Tensor out = at::empty(src.sizes(), at::kFloat);
  const int64_t plane = src.size(1) * src.size(2);
  const uint8_t* s = src.data_ptr<uint8_t>();
  float* d = out.data_ptr<float>();
  for (int64_t k = 0; k < c; ++k) {
    for (int64_t i = 0; i < plane; ++i) {
      d[k * plane + i] = (static_cast<float>(s[k * plane + i]) / 255.0f - mean[k]) / std[k];
    }
  }
  return out;
}

Box random_resized_crop_box(int64_t h, int64_t w, Rng& rng, double scale_min, double scale_max,
                            double ratio_min, double ratio_max) {
  const double area = static_cast<double>(h) * static_cast<double>(w);
  const double log_lo = std::log(ratio_min), log_hi = std::log(ratio_max);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * rng.uniform(scale_min, scale_max);
    const double ratio = std::exp(rng.uniform(log_lo, log_hi));
    const int64_t cw = std::llround(std::sqrt(target * ratio));
    const int64_t ch = std::llround(std::sqrt(target / ratio));
    if (cw > 0 && ch > 0 && cw <= w && ch <= h) {
      const int64_t top = static_cast<int64_t>(rng.below(static_cast<uint64_t>(h - ch + 1)));
      const int64_t left = static_cast<int64_t>(rng.below(static_cast<uint64_t>(w - cw + 1)));
      return Box{double(top), double(left), double(ch), double(cw)};
    }
  }
  // Fallback: whole image clamped to the ratio range, centred.
  const double in_ratio = double(w) / double(h);
  double cw = double(w), ch = double(h);
  if (in_ratio < ratio_min) {
    ch = std::round(cw / ratio_min);
  } else if (in_ratio > ratio_max) {
    cw = std::round(ch * ratio_max);
  }
  return Box{std::floor((h - ch) / 2), std::floor((w - cw) / 2), ch, cw};
}

Box resize_center_crop_box(int64_t h, int64_t w, int64_t resize, int64_t out_h, int64_t out_w) {
  // Scale factor of the resize (shorter side -> resize), then the crop window
  // mapped back to source coordinates.
  const double s = double(resize) / double(std::min(h, w));
  const double rh = std::round(h * s), rw = std::round(w * s);
  const double sy = rh / h, sx = rw / w;
  const double top = std::round((rh - out_h) / 2.0), left = std::round((rw - out_w) / 2.0);
  return Box{top / sy, left / sx, out_h / sy, out_w / sx};
}

Pipeline::Pipeline(int64_t channels, PipelineOptions options)
    : channels_(channels), opt_(std::move(options)) {
  if (channels_ <= 0) throw DataError("pipeline: channels must be positive");
  if (opt_.out_height <= 0 || opt_.out_width <= 0) {
    throw DataError(pactq::format("pipeline: output size {}x{} must be positive", opt_.out_height,
                                  opt_.out_width));
  }
  if (static_cast<int64_t>(opt_.mean.size()) != channels_ ||
      static_cast<int64_t>(opt_.std.size()) != channels_) {
    throw DataError(pactq::format("pipeline: need {} mean and std values, got {} and {}", channels_,
                                  opt_.mean.size(), opt_.std.size()));
  }
  if (opt_.pad < 0) throw DataError("pipeline: pad must be >= 0");
  lut_.resize(channels_ * 256);
  for (int64_t k = 0; k < channels_; ++k) {
    for (int v = 0; v < 256; ++v) {
      lut_[k * 256 + v] = (static_cast<float>(v) / 255.0f - opt_.mean[k]) / opt_.std[k];
    }
  }
}

void Pipeline::apply(const at::Tensor& image_in, Rng& rng, float* out) const {
  check_u8_chw(image_in, "pipeline");
  const at::Tensor image = image_in.contiguous();
  const int64_t c = image.size(0), h = image.size(1), w = image.size(2);
  if (c != channels_) {
    throw DataError(pactq::format("pipeline: image has {} channels, expected {}", c, channels_));
  }
  const int64_t oh = opt_.out_height, ow = opt_.out_width;
  const uint8_t* src = image.data_ptr<uint8_t>();

  if (opt_.geometry == Geometry::Identity || opt_.geometry == Geometry::PadCrop) {
    if (h != oh || w != ow) {
      throw DataError(pactq::format("pipeline: image is {}x{}, expected {}x{}", h, w, oh, ow));
    }
    int64_t dy = 0, dx = 0;  // source = output + offset
    if (opt_.geometry == Geometry::PadCrop && opt_.pad > 0) {
      const auto span = static_cast<uint64_t>(2 * opt_.pad + 1);
      dy = static_cast<int64_t>(rng.below(span)) - opt_.pad;
      dx = static_cast<int64_t>(rng.below(span)) - opt_.pad;
    }
    const bool flip = opt_.hflip && rng.coin();
    for (int64_t k = 0; k < c; ++k) {
      const float* lut = lut_.data() + k * 256;
      const float zero = lut[0];
      for (int64_t y = 0; y < oh; ++y) {
        float* orow = out + (k * oh + y) * ow;
        const int64_t sy = y + dy;
        if (sy < 0 || sy >= h) {
          std::fill(orow, orow + ow, zero);
          continue;
        }
        const uint8_t* srow = src + (k * h + sy) * w;
        for (int64_t x = 0; x < ow; ++x) {
          // Flip after the crop: output column x shows cropped column x' .
          const int64_t xc = flip ? ow - 1 - x : x;
          const int64_t sx = xc + dx;
          orow[x] = (sx >= 0 && sx < w) ? lut[srow[sx]] : zero;
        }
      }
    }
    return;
  }

  Box box;
  if (opt_.geometry == Geometry::RandomResizedCrop) {
    box = random_resized_crop_box(h, w, rng, opt_.scale_min, opt_.scale_max, opt_.ratio_min,
                                  opt_.ratio_max);
  } else {
    box = resize_center_crop_box(h, w, opt_.resize, oh, ow);
  }
  const bool flip = opt_.hflip && rng.coin();
  resample_box(image, box, oh, ow, out);
  for (int64_t k = 0; k < c; ++k) {
    const float m = opt_.mean[k], s = opt_.std[k];
    for (int64_t y = 0; y < oh; ++y) {
      float* row = out + (k * oh + y) * ow;
      if (flip) std::reverse(row, row + ow);
      // Round like a uint8 image would be before ToTensor, then normalise.
      for (int64_t x = 0; x < ow; ++x) row[x] = (std::clamp(row[x], 0.0f, 255.0f) / 255.0f - m) / s;
    }
  }
}

at::Tensor Pipeline::operator()(const at::Tensor& image, Rng& rng) const {
  at::Tensor out = at::empty({channels_, opt_.out_height, opt_.out_width}, at::kFloat);
  apply(image, rng, out.data_ptr<float>());
  return out;
}

Pipeline make_pipeline(const DatasetInfo& info, Split split, const DatasetOptions& options) {
  PipelineOptions p;
  p.mean = info.mean;
  p.std = info.std;
  const bool variable_size = info.height <= 0 || info.width <= 0;
  const bool train = split == Split::Train && options.augment;
  const bool is_cifar = info.name == "cifar10" || info.name == "cifar100";
  if (variable_size) {
    if (options.image_size <= 0 || options.resize_size <= 0) {
      throw DataError(pactq::format("dataset {}: image_size {} and resize_size {} must be positive",
                                    info.name, options.image_size, options.resize_size));
    }
    p.out_height = p.out_width = options.image_size;
    p.resize = options.resize_size;
    p.geometry = train ? Geometry::RandomResizedCrop : Geometry::ResizeCenterCrop;
    p.hflip = train && options.hflip.value_or(true);
  } else {
    p.out_height = info.height;
    p.out_width = info.width;
    if (train) {
      p.pad = options.pad.value_or(is_cifar ? 4 : 0);
      p.geometry = p.pad > 0 ? Geometry::PadCrop : Geometry::Identity;
      p.hflip = options.hflip.value_or(is_cifar);
    }
  }
  return Pipeline(info.channels, std::move(p));
}

}  // namespace pactq::data
