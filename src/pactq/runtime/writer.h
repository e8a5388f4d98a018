// ModelWriter: builds a .pqm file (docs/format.md) without LibTorch.
//
// Usage (the exporter):
//   ModelWriter w;
//   w.set_model("resnet20"); w.set_classes({"airplane", ...});
//   w.add(InputNode{"input", 3, 32, 32, mean, std});
//   w.add(conv_node);  ...  w.add(linear_node);
//   w.set_output("fc");           // default: the last node added
//   w.write("model.pqm");         // validates by loading, then writes atomically
//
// Nodes must be added in topological order (inputs before users). Each node's
// tensors are named "<node>.weight", "<node>.out_scale", "<node>.out_bias"
// (affine: "<node>.scale", "<node>.bias"); weight codes are packed here.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "pactq/runtime/graph.h"

namespace pactq::rt {

class ModelWriter {
 public:
  ModelWriter();

  void add(const InputNode& node);
  void add(const ConvNode& node);
  void add(const LinearNode& node);
  void add(const PoolNode& node);
  void add(const GlobalAvgPoolNode& node);
  void add(const FlattenNode& node);
  void add(const AddNode& node);
  void add(const AffineNode& node);

  // Name of the node whose output run() returns (default: last node added).
  void set_output(const std::string& node_name);
  void set_model(const std::string& model_name);            // metadata "model"
  void set_classes(const std::vector<std::string>& names);  // metadata "classes" (JSON array)
  void set_producer(const std::string& producer);           // metadata "producer"
  // Any other metadata entry (string -> string). Reserved keys: format,
  // format_version, graph.
  void set_metadata(const std::string& key, const std::string& value);

  // Extra raw tensors (not referenced by the graph; readers ignore them).
  void add_tensor_f32(const std::string& name, std::vector<float> data, std::vector<int64_t> shape);
  void add_tensor_u8(const std::string& name, std::vector<uint8_t> data,
                     std::vector<int64_t> shape);

  // The whole file in memory. With validate, it is loaded back with
  // Model::load_from_memory first (throws FormatError on any inconsistency).
  std::vector<uint8_t> serialize(bool validate = true) const;
  // Atomic (common/atomic_file.h): a temporary file in the same directory,
  // fsynced, then renamed over `path`.
  void write(const std::string& path, bool validate = true) const;

 private:
  struct Tensor {
    std::string name, dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  void add_tensor_bytes(const std::string& name, const std::string& dtype,
                        std::vector<int64_t> shape, std::vector<uint8_t> bytes);
  // Adds a node's JSON (serialised) and its tensors, as an op's serialiser
  // made them (runtime/ops/op_table.h).
  template <typename Record>
  void add_record(const std::string& name, Record record);

  std::vector<Tensor> tensors_;
  std::vector<std::string> node_json_;  // serialised node objects
  std::vector<std::string> node_names_;
  std::string output_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace pactq::rt
