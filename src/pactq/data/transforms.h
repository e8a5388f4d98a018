// Image transforms: uint8 CHW in, float32 CHW normalised out. The Pipeline
// fuses geometry (pad-crop, random-resized-crop, resize + center crop), the
// random horizontal flip and the normalisation into one pass that writes
// straight into a batch buffer. All randomness comes from the Rng passed in,
// so a sample's augmentation is a pure function of its seed.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "pactq/data/dataset.h"
#include "pactq/data/rng.h"

namespace pactq::data {

// ---- standalone building blocks (uint8 [C,H,W] unless noted) -------------

// Mirror left-right.
at::Tensor hflip(const at::Tensor& image);
// Zero-pad by `pad` on every side, then take the HxW window whose top-left
// corner is (top, left) in padded coordinates (0..2*pad). top = left = pad is
// the identity; the output keeps the input size.
at::Tensor pad_crop(const at::Tensor& image, int64_t pad, int64_t top, int64_t left);
// Antialiased bilinear (triangle filter, PIL-style) resize.
at::Tensor resize(const at::Tensor& image, int64_t out_h, int64_t out_w);
// Resize so the shorter side is `size` (aspect ratio kept).
at::Tensor resize_shorter(const at::Tensor& image, int64_t size);
at::Tensor center_crop(const at::Tensor& image, int64_t h, int64_t w);
// float32 [C,H,W]: (pixel / 255 - mean[c]) / std[c].
at::Tensor normalize(const at::Tensor& image, const std::vector<float>& mean,
                     const std::vector<float>& std);

// A source rectangle in pixel coordinates (may be fractional).
struct Box {
  double y = 0, x = 0, h = 0, w = 0;
};
// torchvision RandomResizedCrop box (10 tries, then a centred fallback).
Box random_resized_crop_box(int64_t h, int64_t w, Rng& rng, double scale_min, double scale_max,
                            double ratio_min, double ratio_max);
// The region of the source that "resize shorter side to `resize`, then center
// crop out_h x out_w" keeps.
Box resize_center_crop_box(int64_t h, int64_t w, int64_t resize, int64_t out_h, int64_t out_w);
// Resamples `box` of a uint8 [C,H,W] image to out_h x out_w floats in [0,255]
// written to dst (C*out_h*out_w).
void resample_box(const at::Tensor& image, const Box& box, int64_t out_h, int64_t out_w,
                  float* dst);

// ---- fused pipeline ------------------------------------------------------

enum class Geometry {
  Identity,           // keep the input (fixed-size datasets)
  PadCrop,            // zero-pad by `pad`, random crop back to the input size
  RandomResizedCrop,  // train pipeline for image folders
  ResizeCenterCrop,   // eval pipeline for image folders
};

struct PipelineOptions {
  Geometry geometry = Geometry::Identity;
  int64_t pad = 4;
  int64_t out_height = 0;  // output size; must be set (make_pipeline fills it)
  int64_t out_width = 0;
  int64_t resize = 256;  // ResizeCenterCrop: shorter side before the crop
  double scale_min = 0.08, scale_max = 1.0;
  double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;
  bool hflip = false;       // random horizontal flip, p = 0.5
  std::vector<float> mean;  // one per channel
  std::vector<float> std;
};

class Pipeline {
 public:
  Pipeline(int64_t channels, PipelineOptions options);
  int64_t channels() const { return channels_; }
  int64_t out_height() const { return opt_.out_height; }
  int64_t out_width() const { return opt_.out_width; }
  const PipelineOptions& options() const { return opt_; }

  // image: uint8 [C,H,W]; writes C*out_height*out_width floats to out.
  // Throws DataError if the image does not fit (channels, Identity size).
  void apply(const at::Tensor& image, Rng& rng, float* out) const;
  at::Tensor operator()(const at::Tensor& image, Rng& rng) const;

 private:
  int64_t channels_;
  PipelineOptions opt_;
  std::vector<float> lut_;  // [C][256] normalised value per pixel byte
};

// The default pipeline for a dataset and split: train (with options.augment)
// = cifar: pad-crop 4 + flip; mnist-family: none; image folders:
// random-resized-crop(image_size) + flip. Test = identity, or for image
// folders resize(resize_size) + center crop(image_size). options.pad /
// options.hflip override the train defaults; normalisation is info.mean/std.
Pipeline make_pipeline(const DatasetInfo& info, Split split, const DatasetOptions& options = {});

}  // namespace pactq::data
