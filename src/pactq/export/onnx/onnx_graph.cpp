#include "pactq/export/onnx/onnx_graph.h"

#include <cstring>
#include <stdexcept>

namespace pactq::export_::onnx_export {

std::string OnnxGraph::add_initializer(const std::string& name, int type, std::vector<int64_t> dims,
                                       const void* data, size_t bytes) {
  std::string raw(bytes, '\0');
  if (bytes) std::memcpy(raw.data(), data, bytes);  // x86-64 and ONNX are both little-endian
  if (names_.count(name)) {
    for (const auto& t : graph_->initializer()) {
      if (t.name() == name && t.data_type() == type && t.raw_data() == raw &&
          std::vector<int64_t>(t.dims().begin(), t.dims().end()) == dims) {
        return name;
      }
    }
    throw std::logic_error("onnx export: two different tensors named " + name);
  }
  onnx::TensorProto* t = graph_->add_initializer();
  t->set_name(name);
  t->set_data_type(type);
  for (int64_t d : dims) t->add_dims(d);
  t->set_raw_data(std::move(raw));
  names_.insert(name);
  return name;
}

std::string OnnxGraph::floats(const std::string& name, std::vector<int64_t> dims,
                              const std::vector<float>& v) {
  return add_initializer(name, onnx::TensorProto::FLOAT, std::move(dims), v.data(), 4 * v.size());
}
std::string OnnxGraph::int8s(const std::string& name, std::vector<int64_t> dims,
                             const std::vector<int8_t>& v) {
  return add_initializer(name, onnx::TensorProto::INT8, std::move(dims), v.data(), v.size());
}
std::string OnnxGraph::int32s(const std::string& name, std::vector<int64_t> dims,
                              const std::vector<int32_t>& v) {
  return add_initializer(name, onnx::TensorProto::INT32, std::move(dims), v.data(), 4 * v.size());
}
std::string OnnxGraph::int64s(const std::string& name, std::vector<int64_t> dims,
                              const std::vector<int64_t>& v) {
  return add_initializer(name, onnx::TensorProto::INT64, std::move(dims), v.data(), 8 * v.size());
}
std::string OnnxGraph::uint8s(const std::string& name, std::vector<int64_t> dims,
                              const std::vector<uint8_t>& v) {
  return add_initializer(name, onnx::TensorProto::UINT8, std::move(dims), v.data(), v.size());
}

onnx::NodeProto& OnnxGraph::node(const std::string& op, std::initializer_list<std::string> inputs,
                                 const std::string& output, const std::string& domain) {
  if (!names_.insert(output).second) {
    throw std::logic_error("onnx export: two values named " + output);
  }
  onnx::NodeProto* n = graph_->add_node();
  n->set_op_type(op);
  n->set_name(output);
  if (!domain.empty()) n->set_domain(domain);
  for (const auto& i : inputs) n->add_input(i);
  n->add_output(output);
  return *n;
}

void OnnxGraph::rename_last_output(const std::string& name) {
  if (graph_->node_size() == 0) throw std::logic_error("onnx export: no node to rename");
  onnx::NodeProto* n = graph_->mutable_node(graph_->node_size() - 1);
  if (!names_.insert(name).second) throw std::logic_error("onnx export: two values named " + name);
  names_.erase(n->output(0));
  n->set_output(0, name);
  n->set_name(name);
}

void OnnxGraph::set_int(onnx::NodeProto& n, const std::string& name, int64_t v) {
  onnx::AttributeProto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}

void OnnxGraph::set_ints(onnx::NodeProto& n, const std::string& name, std::vector<int64_t> v) {
  onnx::AttributeProto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}

void OnnxGraph::set_string(onnx::NodeProto& n, const std::string& name, const std::string& v) {
  onnx::AttributeProto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(v);
}

}  // namespace pactq::export_::onnx_export
