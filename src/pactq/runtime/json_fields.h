// Typed, range-checked reads of a .pqm header's JSON fields. Every failure
// throws FormatError naming the file and where in it ("node 'conv1': ...").
// Internal to the runtime (loader and op table).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "pactq/runtime/graph.h"

namespace pactq::rt::detail {

using nlohmann::json;

struct JsonFields {
  std::string file;
  std::string where;  // e.g. "node 'conv1'", "tensor 'fc.weight'"

  [[noreturn]] void fail(const std::string& what) const {
    throw FormatError(file + ": " + where + ": " + what);
  }
  const json& member(const json& obj, const char* key) const;
  int64_t as_int(const json& v, const std::string& what, int64_t lo, int64_t hi) const;
  int get_int(const json& obj, const char* key, int64_t lo, int64_t hi) const;
  // Finite and within float range.
  float get_float(const json& obj, const char* key) const;
  std::string get_string(const json& obj, const char* key) const;
  // "key": [a, b], both in [lo, hi].
  void get_pair(const json& obj, const char* key, int lo, int hi, int* a, int* b) const;
};

}  // namespace pactq::rt::detail
