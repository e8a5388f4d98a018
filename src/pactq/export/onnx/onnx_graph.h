// OnnxGraph: appends nodes and initializers to an onnx::GraphProto with
// unique names. Constants are stored once by name (a scale shared by a
// QuantizeLinear and its DequantizeLinear, a Clip bound shared by every
// layer of one bit width), as raw little-endian bytes.
#pragma once
#include <onnx/onnx_pb.h>

#include <cstdint>
#include <initializer_list>
#include <set>
#include <string>
#include <vector>

namespace pactq::export_::onnx_export {

class OnnxGraph {
 public:
  explicit OnnxGraph(onnx::GraphProto* graph) : graph_(graph) {}

  // Initializers; each returns its name. A name already stored is returned
  // as it is when the content is the same, and is an error otherwise.
  std::string floats(const std::string& name, std::vector<int64_t> dims,
                     const std::vector<float>& values);
  std::string int8s(const std::string& name, std::vector<int64_t> dims,
                    const std::vector<int8_t>& values);
  std::string int32s(const std::string& name, std::vector<int64_t> dims,
                     const std::vector<int32_t>& values);
  std::string int64s(const std::string& name, std::vector<int64_t> dims,
                     const std::vector<int64_t>& values);
  std::string uint8s(const std::string& name, std::vector<int64_t> dims,
                     const std::vector<uint8_t>& values);
  std::string float_scalar(const std::string& name, float v) { return floats(name, {}, {v}); }

  // A node named after its one output; domain "" is the default ONNX domain.
  onnx::NodeProto& node(const std::string& op, std::initializer_list<std::string> inputs,
                        const std::string& output, const std::string& domain = "");
  // Renames the output of the node added last (nothing reads it yet).
  void rename_last_output(const std::string& name);

  static void set_int(onnx::NodeProto& n, const std::string& name, int64_t v);
  static void set_ints(onnx::NodeProto& n, const std::string& name, std::vector<int64_t> v);
  static void set_string(onnx::NodeProto& n, const std::string& name, const std::string& v);

 private:
  std::string add_initializer(const std::string& name, int type, std::vector<int64_t> dims,
                              const void* data, size_t bytes);
  onnx::GraphProto* graph_;
  std::set<std::string> names_;  // every tensor name given out
};

}  // namespace pactq::export_::onnx_export
