// pactq::rt::Model: loads a .pqm file (docs/format.md), validates it
// completely, plans buffers once and runs the integer graph. No LibTorch.
//
//   auto m = pactq::rt::Model::load("model.pqm");   // throws FormatError
//   m.set_threads(2);
//   std::vector<float> logits = m.run(pixels, batch); // pixels: [batch, C, H, W] in [0,1]
//
// A Model is movable, not copyable; run() and debug_output() must not be
// called concurrently on the same Model (they share the planned buffers).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pactq/runtime/graph.h"

namespace pactq::rt {

// One node's output for a batch, in logical NCHW order (debug / --verify).
struct NodeOutput {
  std::string node;
  int batch = 0, channels = 0, height = 0, width = 0;
  bool codes = false;  // CODES tensor: `code_values` holds the codes
  int bits = 0;
  float alpha = 0.f, scale = 0.f;    // codes: scale = alpha / (2^bits - 1)
  std::vector<uint8_t> code_values;  // [batch, C, H, W] when codes
  std::vector<float> values;         // [batch, C, H, W] real values (always filled)
};

class Model {
 public:
  static Model load(const std::string& path);
  // `name` is used in error messages in place of a file name.
  static Model load_from_memory(const uint8_t* data, size_t size,
                                const std::string& name = "<memory>");

  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  ~Model();

  // pixels: [batch, C, H, W] float in [0, 1]; returns the output node's real
  // values, [batch, classes()].
  std::vector<float> run(const float* pixels, int batch);
  // Runs the graph and returns the named node's output (FormatError if unknown).
  NodeOutput debug_output(const std::string& node, const float* pixels, int batch);

  int classes() const;  // elements of the output node per image
  int input_channels() const;
  int input_height() const;
  int input_width() const;
  const std::vector<std::string>& class_names() const;  // metadata "classes", may be empty
  std::string model_name() const;                       // metadata "model", may be empty
  std::string metadata(const std::string& key) const;   // "" when absent
  std::vector<std::string> node_names() const;
  size_t file_bytes() const;
  size_t weight_bytes() const;  // bytes of the tensors the graph uses
  // Planned activation buffer bytes per image (with liveness-based reuse).
  size_t activation_bytes_per_image() const;

  // Worker threads for run() (>= 1; default 1).
  void set_threads(int n);
  int threads() const;
  // "avx2" or "ref": the quantized conv variant in use.
  std::string isa() const;

  // Human-readable summary: every node with op, shapes, bits, scales, bytes.
  std::string describe() const;

 private:
  struct Impl;
  Model();
  std::unique_ptr<Impl> impl_;
};

}  // namespace pactq::rt
