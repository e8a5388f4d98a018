// The container (safetensors layout, metadata, atomic write). Each node's
// JSON and tensors come from its op's serialiser in runtime/ops/, the same
// files that parse them.
#include "pactq/runtime/writer.h"

#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "pactq/common/atomic_file.h"
#include "pactq/runtime/model.h"
#include "pactq/runtime/ops/op_table.h"

namespace pactq::rt {

using nlohmann::json;

ModelWriter::ModelWriter() {
  metadata_["producer"] = "pactq";
}

void ModelWriter::add_tensor_bytes(const std::string& name, const std::string& dtype,
                                   std::vector<int64_t> shape, std::vector<uint8_t> bytes) {
  for (const auto& t : tensors_) {
    if (t.name == name) throw FormatError("ModelWriter: duplicate tensor '" + name + "'");
  }
  if (name == "__metadata__") throw FormatError("ModelWriter: reserved tensor name '__metadata__'");
  tensors_.push_back(Tensor{name, dtype, std::move(shape), std::move(bytes)});
}

void ModelWriter::add_tensor_f32(const std::string& name, std::vector<float> data,
                                 std::vector<int64_t> shape) {
  std::vector<uint8_t> bytes(data.size() * sizeof(float));
  if (!data.empty()) std::memcpy(bytes.data(), data.data(), bytes.size());
  add_tensor_bytes(name, "F32", std::move(shape), std::move(bytes));
}
void ModelWriter::add_tensor_u8(const std::string& name, std::vector<uint8_t> data,
                                std::vector<int64_t> shape) {
  add_tensor_bytes(name, "U8", std::move(shape), std::move(data));
}

template <typename Record>
void ModelWriter::add_record(const std::string& name, Record record) {
  for (const auto& n : node_names_) {
    if (n == name) throw FormatError("ModelWriter: duplicate node '" + name + "'");
  }
  detail::writer_require(!name.empty(), name, "empty node name");
  for (auto& t : record.tensors)
    add_tensor_bytes(t.name, t.dtype, std::move(t.shape), std::move(t.bytes));
  node_json_.push_back(record.node.dump());
  node_names_.push_back(name);
}

void ModelWriter::add(const InputNode& n) {
  add_record(n.name, detail::write_node(n));
}
void ModelWriter::add(const ConvNode& n) {
  add_record(n.name, detail::write_node(n));
}
void ModelWriter::add(const LinearNode& n) {
  add_record(n.name, detail::write_node(n));
}
void ModelWriter::add(const PoolNode& n) {
  add_record(n.name, detail::write_node(n));
}
void ModelWriter::add(const GlobalAvgPoolNode& n) {
  add_record(n.name, detail::write_node(n));
}
void ModelWriter::add(const FlattenNode& n) {
  add_record(n.name, detail::write_node(n));
}
void ModelWriter::add(const AddNode& n) {
  add_record(n.name, detail::write_node(n));
}
void ModelWriter::add(const AffineNode& n) {
  add_record(n.name, detail::write_node(n));
}

void ModelWriter::set_output(const std::string& node_name) {
  output_ = node_name;
}
void ModelWriter::set_model(const std::string& model_name) {
  metadata_["model"] = model_name;
}
void ModelWriter::set_classes(const std::vector<std::string>& names) {
  metadata_["classes"] = json(names).dump();
}
void ModelWriter::set_producer(const std::string& producer) {
  metadata_["producer"] = producer;
}
void ModelWriter::set_metadata(const std::string& key, const std::string& value) {
  if (key == "format" || key == "format_version" || key == "graph") {
    throw FormatError("ModelWriter: metadata key '" + key + "' is reserved");
  }
  metadata_[key] = value;
}

std::vector<uint8_t> ModelWriter::serialize(bool validate) const {
  if (node_json_.empty()) throw FormatError("ModelWriter: no nodes");
  json graph;
  graph["nodes"] = json::array();
  for (const auto& s : node_json_) graph["nodes"].push_back(json::parse(s));
  graph["output"] = output_.empty() ? node_names_.back() : output_;

  // Data layout: 4-byte dtypes first so that, with the 8-byte aligned data
  // start, every F32/I32 tensor is 4-byte aligned; then U8. Contiguous, no
  // holes (safetensors requires the tensors to tile the data section).
  std::vector<const Tensor*> order;
  for (const auto& t : tensors_)
    if (t.dtype != "U8") order.push_back(&t);
  for (const auto& t : tensors_)
    if (t.dtype == "U8") order.push_back(&t);

  json header = json::object();
  size_t offset = 0;
  for (const Tensor* t : order) {
    header[t->name] = {{"dtype", t->dtype},
                       {"shape", t->shape},
                       {"data_offsets", {offset, offset + t->bytes.size()}}};
    offset += t->bytes.size();
  }
  json meta = json::object();
  for (const auto& kv : metadata_) meta[kv.first] = kv.second;
  meta["format"] = "pqm";
  meta["format_version"] = "1";
  meta["graph"] = graph.dump();
  header["__metadata__"] = meta;

  std::string h = header.dump();
  while ((8 + h.size()) % 8 != 0) h.push_back(' ');
  std::vector<uint8_t> out(8 + h.size() + offset);
  uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(n >> (8 * i));
  std::memcpy(out.data() + 8, h.data(), h.size());
  size_t pos = 8 + h.size();
  for (const Tensor* t : order) {
    if (!t->bytes.empty()) std::memcpy(out.data() + pos, t->bytes.data(), t->bytes.size());
    pos += t->bytes.size();
  }
  if (validate) (void)Model::load_from_memory(out.data(), out.size(), "<ModelWriter>");
  return out;
}

void ModelWriter::write(const std::string& path, bool validate) const {
  const std::vector<uint8_t> bytes = serialize(validate);
  try {
    write_bytes_atomically(path, bytes.data(), bytes.size());
  } catch (const std::runtime_error& e) {
    throw FormatError(e.what());  // already names the path
  }
}

}  // namespace pactq::rt
