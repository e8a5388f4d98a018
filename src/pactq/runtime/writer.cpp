#include "pactq/runtime/writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "pactq/runtime/model.h"
#include "pactq/runtime/pack.h"

namespace pactq::rt {

using nlohmann::json;

namespace {

json output_json(const OutputSpec& o) {
  json j;
  if (o.codes) {
    j["type"] = "codes";
    j["bits"] = o.bits;
    j["alpha"] = o.alpha;
  } else {
    j["type"] = "float";
    j["act"] = o.act == FloatAct::kRelu ? "relu" : o.act == FloatAct::kClip ? "clip" : "none";
    if (o.act == FloatAct::kClip) j["alpha"] = o.alpha;
  }
  return j;
}

void require(bool ok, const std::string& node, const std::string& what) {
  if (!ok) throw FormatError("ModelWriter: node '" + node + "': " + what);
}

}  // namespace

ModelWriter::ModelWriter() {
  metadata_["producer"] = "pactq";
}

void ModelWriter::add_tensor_bytes(const std::string& name, const std::string& dtype,
                                   std::vector<int64_t> shape, const void* data, size_t nbytes) {
  for (const auto& t : tensors_) {
    if (t.name == name) throw FormatError("ModelWriter: duplicate tensor '" + name + "'");
  }
  if (name == "__metadata__") throw FormatError("ModelWriter: reserved tensor name '__metadata__'");
  Tensor t;
  t.name = name;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.bytes.resize(nbytes);
  if (nbytes) std::memcpy(t.bytes.data(), data, nbytes);
  tensors_.push_back(std::move(t));
}

void ModelWriter::add_tensor_f32(const std::string& name, std::vector<float> data,
                                 std::vector<int64_t> shape) {
  add_tensor_bytes(name, "F32", std::move(shape), data.data(), data.size() * sizeof(float));
}
void ModelWriter::add_tensor_u8(const std::string& name, std::vector<uint8_t> data,
                                std::vector<int64_t> shape) {
  add_tensor_bytes(name, "U8", std::move(shape), data.data(), data.size());
}
void ModelWriter::add_tensor_i32(const std::string& name, std::vector<int32_t> data,
                                 std::vector<int64_t> shape) {
  add_tensor_bytes(name, "I32", std::move(shape), data.data(), data.size() * sizeof(int32_t));
}

void ModelWriter::add_node_json(const std::string& json_text, const std::string& name) {
  for (const auto& n : node_names_) {
    if (n == name) throw FormatError("ModelWriter: duplicate node '" + name + "'");
  }
  require(!name.empty(), name, "empty node name");
  node_json_.push_back(json_text);
  node_names_.push_back(name);
}

std::string ModelWriter::add_weight(const std::string& node, const WeightData& w,
                                    size_t expected_count, std::string* attrs_json) {
  json attrs;
  const std::string tname = node + ".weight";
  require(w.f32.empty() != w.codes.empty(), node, "exactly one of weight.f32 / weight.codes");
  if (!w.f32.empty()) {
    require(w.f32.size() == expected_count, node,
            "weight.f32 has " + std::to_string(w.f32.size()) + " values, expected " +
                std::to_string(expected_count));
    add_tensor_f32(tname, w.f32, {static_cast<int64_t>(w.f32.size())});
    attrs["weight_dtype"] = "f32";
  } else {
    require(w.bits >= 1 && w.bits <= 8, node, "weight.bits must be 1..8");
    require(w.codes.size() == expected_count, node,
            "weight.codes has " + std::to_string(w.codes.size()) + " values, expected " +
                std::to_string(expected_count));
    std::vector<uint8_t> packed = pack_codes(w.codes, w.bits);
    const int64_t n = static_cast<int64_t>(packed.size());
    add_tensor_u8(tname, std::move(packed), {n});
    attrs["weight_dtype"] = "codes";
    attrs["weight_bits"] = w.bits;
    attrs["weight_packed_bits"] = packed_bits_for(w.bits);
    attrs["weight_scale"] = w.scale;
  }
  *attrs_json = attrs.dump();
  return tname;
}

void ModelWriter::add(const InputNode& n) {
  require(n.mean.empty() || static_cast<int>(n.mean.size()) == n.channels, n.name,
          "mean needs one value per channel");
  require(n.std.empty() || static_cast<int>(n.std.size()) == n.channels, n.name,
          "std needs one value per channel");
  json j;
  j["name"] = n.name;
  j["op"] = "input";
  j["inputs"] = json::array();
  json a;
  a["channels"] = n.channels;
  a["height"] = n.height;
  a["width"] = n.width;
  a["mean"] = n.mean.empty() ? std::vector<float>(n.channels > 0 ? n.channels : 0, 0.f) : n.mean;
  a["std"] = n.std.empty() ? std::vector<float>(n.channels > 0 ? n.channels : 0, 1.f) : n.std;
  j["attrs"] = a;
  j["output"] = output_json(OutputSpec::Float());
  j["tensors"] = json::object();
  add_node_json(j.dump(), n.name);
}

namespace {
// Shared part of conv and linear.
json conv_like(const std::string& name, const std::string& op, const std::string& input,
               const Residual& r, const OutputSpec& out) {
  json j;
  j["name"] = name;
  j["op"] = op;
  j["inputs"] = json::array({input});
  if (!r.input.empty()) j["inputs"].push_back(r.input);
  j["output"] = output_json(out);
  return j;
}
}  // namespace

void ModelWriter::add(const ConvNode& n) {
  require(n.groups >= 1 && n.in_channels % n.groups == 0 && n.out_channels % n.groups == 0, n.name,
          "groups must divide in_channels and out_channels");
  require(static_cast<int>(n.out_scale.size()) == n.out_channels &&
              static_cast<int>(n.out_bias.size()) == n.out_channels,
          n.name, "out_scale/out_bias need out_channels values");
  json j = conv_like(n.name, "conv2d", n.input, n.residual, n.output);
  std::string wattrs;
  const size_t count =
      static_cast<size_t>(n.out_channels) * (n.in_channels / n.groups) * n.kernel_h * n.kernel_w;
  const std::string wname = add_weight(n.name, n.weight, count, &wattrs);
  json a = json::parse(wattrs);
  a["in_channels"] = n.in_channels;
  a["out_channels"] = n.out_channels;
  a["kernel"] = {n.kernel_h, n.kernel_w};
  a["stride"] = {n.stride_h, n.stride_w};
  a["padding"] = {n.pad_h, n.pad_w};
  a["groups"] = n.groups;
  if (!n.residual.input.empty()) {
    a["residual_stride"] = n.residual.stride;
    a["residual_pad_channels"] = n.residual.pad_channels;
  }
  j["attrs"] = a;
  add_tensor_f32(n.name + ".out_scale", n.out_scale, {n.out_channels});
  add_tensor_f32(n.name + ".out_bias", n.out_bias, {n.out_channels});
  j["tensors"] = {
      {"weight", wname}, {"out_scale", n.name + ".out_scale"}, {"out_bias", n.name + ".out_bias"}};
  add_node_json(j.dump(), n.name);
}

void ModelWriter::add(const LinearNode& n) {
  require(static_cast<int>(n.out_scale.size()) == n.out_features &&
              static_cast<int>(n.out_bias.size()) == n.out_features,
          n.name, "out_scale/out_bias need out_features values");
  json j = conv_like(n.name, "linear", n.input, n.residual, n.output);
  std::string wattrs;
  const size_t count = static_cast<size_t>(n.out_features) * n.in_features;
  const std::string wname = add_weight(n.name, n.weight, count, &wattrs);
  json a = json::parse(wattrs);
  a["in_features"] = n.in_features;
  a["out_features"] = n.out_features;
  if (!n.residual.input.empty()) {
    a["residual_stride"] = n.residual.stride;
    a["residual_pad_channels"] = n.residual.pad_channels;
  }
  j["attrs"] = a;
  add_tensor_f32(n.name + ".out_scale", n.out_scale, {n.out_features});
  add_tensor_f32(n.name + ".out_bias", n.out_bias, {n.out_features});
  j["tensors"] = {
      {"weight", wname}, {"out_scale", n.name + ".out_scale"}, {"out_bias", n.name + ".out_bias"}};
  add_node_json(j.dump(), n.name);
}

void ModelWriter::add(const PoolNode& n) {
  json j;
  j["name"] = n.name;
  j["op"] = n.max ? "max_pool2d" : "avg_pool2d";
  j["inputs"] = json::array({n.input});
  j["attrs"] = {{"kernel", {n.kernel_h, n.kernel_w}},
                {"stride", {n.stride_h, n.stride_w}},
                {"padding", {n.pad_h, n.pad_w}}};
  if (!n.max) j["output"] = output_json(n.output);
  j["tensors"] = json::object();
  add_node_json(j.dump(), n.name);
}

void ModelWriter::add(const GlobalAvgPoolNode& n) {
  json j;
  j["name"] = n.name;
  j["op"] = "global_avg_pool";
  j["inputs"] = json::array({n.input});
  j["attrs"] = json::object();
  j["output"] = output_json(n.output);
  j["tensors"] = json::object();
  add_node_json(j.dump(), n.name);
}

void ModelWriter::add(const FlattenNode& n) {
  json j;
  j["name"] = n.name;
  j["op"] = "flatten";
  j["inputs"] = json::array({n.input});
  j["attrs"] = json::object();
  j["tensors"] = json::object();
  add_node_json(j.dump(), n.name);
}

void ModelWriter::add(const AddNode& n) {
  json j;
  j["name"] = n.name;
  j["op"] = "add";
  j["inputs"] = json::array({n.a, n.b});
  j["attrs"] = json::object();
  j["output"] = output_json(n.output);
  j["tensors"] = json::object();
  add_node_json(j.dump(), n.name);
}

void ModelWriter::add(const AffineNode& n) {
  require(n.scale.size() == n.bias.size() && !n.scale.empty(), n.name,
          "scale and bias need one value per channel");
  json j;
  j["name"] = n.name;
  j["op"] = "affine";
  j["inputs"] = json::array({n.input});
  j["attrs"] = json::object();
  j["output"] = output_json(n.output);
  add_tensor_f32(n.name + ".scale", n.scale, {static_cast<int64_t>(n.scale.size())});
  add_tensor_f32(n.name + ".bias", n.bias, {static_cast<int64_t>(n.bias.size())});
  j["tensors"] = {{"scale", n.name + ".scale"}, {"bias", n.name + ".bias"}};
  add_node_json(j.dump(), n.name);
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
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw FormatError(path + ": cannot create '" + tmp + "': " + std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      const std::string err = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      throw FormatError(path + ": write failed: " + err);
    }
    done += static_cast<size_t>(w);
  }
  const bool synced = ::fsync(fd) == 0;
  const bool closed = ::close(fd) == 0;
  if (!synced || !closed) {
    const std::string err = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw FormatError(path + ": fsync/close failed: " + err);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string err = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw FormatError(path + ": rename failed: " + err);
  }
  // Make the rename durable: fsync the directory (best effort).
  std::string dir = ".";
  const size_t slash = path.find_last_of('/');
  if (slash != std::string::npos) dir = slash == 0 ? "/" : path.substr(0, slash);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace pactq::rt
