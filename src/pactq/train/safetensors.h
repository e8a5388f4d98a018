// Reading and writing safetensors files (float weights exchanged with
// PyTorch): 8-byte little-endian header length, JSON header, raw bytes.
#pragma once
#include <ATen/ATen.h>

#include <map>
#include <string>

namespace pactq::train {

struct SafetensorsFile {
  std::map<std::string, at::Tensor> tensors;
  std::map<std::string, std::string> metadata;
};

// Throws std::runtime_error naming the file for anything malformed.
SafetensorsFile read_safetensors(const std::string& path);

// Atomic write; tensors are stored contiguous, on CPU, in their dtype.
void write_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace pactq::train
