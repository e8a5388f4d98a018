#include "pactq/train/safetensors.h"

#include <nlohmann/json.hpp>

#include <cstring>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "pactq/common/atomic_file.h"

namespace pactq::train {
namespace {

struct DtypeName {
  const char* name;
  at::ScalarType type;
};
constexpr DtypeName kDtypes[] = {
    {"F32", at::kFloat}, {"F64", at::kDouble}, {"F16", at::kHalf},  {"BF16", at::kBFloat16},
    {"I64", at::kLong},  {"I32", at::kInt},    {"I16", at::kShort}, {"I8", at::kChar},
    {"U8", at::kByte},   {"BOOL", at::kBool},
};

at::ScalarType dtype_from_name(const std::string& name, const std::string& where) {
  for (const auto& d : kDtypes) {
    if (name == d.name) return d.type;
  }
  throw std::runtime_error(where + ": unsupported dtype '" + name + "'");
}

std::string dtype_name(at::ScalarType type, const std::string& where) {
  for (const auto& d : kDtypes) {
    if (type == d.type) return d.name;
  }
  throw std::runtime_error(where + ": cannot store dtype " + std::string(c10::toString(type)));
}

}  // namespace

SafetensorsFile read_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw std::runtime_error(path + ": cannot open safetensors file");
  const uint64_t file_size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  uint64_t header_len = 0;
  unsigned char len_bytes[8];
  if (file_size < 8 || !in.read(reinterpret_cast<char*>(len_bytes), 8)) {
    throw std::runtime_error(path + ": too short for a safetensors file (" +
                             std::to_string(file_size) + " bytes)");
  }
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
  if (header_len > file_size - 8) {
    throw std::runtime_error(path + ": header length " + std::to_string(header_len) +
                             " exceeds the file size " + std::to_string(file_size));
  }
  std::string header(header_len, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_len));
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(header);
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": header is not valid JSON: " + e.what());
  }
  if (!json.is_object()) throw std::runtime_error(path + ": header is not a JSON object");
  const uint64_t data_size = file_size - 8 - header_len;
  std::vector<char> data(data_size);
  in.read(data.data(), static_cast<std::streamsize>(data_size));
  if (!in) throw std::runtime_error(path + ": truncated data section");

  SafetensorsFile out;
  for (const auto& [key, value] : json.items()) {
    if (key == "__metadata__") {
      if (value.is_object()) {
        for (const auto& [mk, mv] : value.items()) {
          if (mv.is_string()) out.metadata[mk] = mv.get<std::string>();
        }
      }
      continue;
    }
    const std::string where = path + ": tensor '" + key + "'";
    try {
      const at::ScalarType type = dtype_from_name(value.at("dtype").get<std::string>(), where);
      const auto shape = value.at("shape").get<std::vector<int64_t>>();
      const auto offsets = value.at("data_offsets").get<std::vector<uint64_t>>();
      if (offsets.size() != 2 || offsets[0] > offsets[1] || offsets[1] > data_size) {
        throw std::runtime_error(where + ": data_offsets out of range of the " +
                                 std::to_string(data_size) + "-byte data section");
      }
      int64_t count = 1;
      for (int64_t d : shape) {
        if (d < 0) throw std::runtime_error(where + ": negative dimension");
        count *= d;
      }
      const uint64_t expected = static_cast<uint64_t>(count) * c10::elementSize(type);
      if (offsets[1] - offsets[0] != expected) {
        throw std::runtime_error(where + ": holds " + std::to_string(offsets[1] - offsets[0]) +
                                 " bytes but its shape and dtype need " + std::to_string(expected));
      }
      at::Tensor t = at::empty(shape, at::TensorOptions().dtype(type));
      if (expected > 0) std::memcpy(t.data_ptr(), data.data() + offsets[0], expected);
      out.tensors.emplace(key, t);
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error(where + ": malformed entry: " + e.what());
    }
  }
  return out;
}

void write_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  std::vector<at::Tensor> blobs;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    at::Tensor t = tensor.detach().to(at::kCPU).contiguous();
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    header[name] = {{"dtype", dtype_name(t.scalar_type(), path + ": tensor '" + name + "'")},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    blobs.push_back(t);
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keep the data 8-byte aligned
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i) file[i] = static_cast<char>((text.size() >> (8 * i)) & 0xff);
  file += text;
  for (const at::Tensor& t : blobs) {
    file.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  }
  write_bytes_atomically(path, file.data(), file.size());
}

}  // namespace pactq::train
