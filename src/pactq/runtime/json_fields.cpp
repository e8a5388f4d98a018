#include "pactq/runtime/json_fields.h"

#include <cmath>
#include <limits>

namespace pactq::rt::detail {

const json& JsonFields::member(const json& obj, const char* key) const {
  auto it = obj.find(key);
  if (it == obj.end()) fail(std::string("missing '") + key + "'");
  return *it;
}

int64_t JsonFields::as_int(const json& v, const std::string& what, int64_t lo, int64_t hi) const {
  int64_t x;
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail(what + " out of range");
    x = static_cast<int64_t>(u);
  } else if (v.is_number_integer()) {
    x = v.get<int64_t>();
  } else {
    fail(what + " must be an integer");
  }
  if (x < lo || x > hi) {
    fail(what + " = " + std::to_string(x) + " out of range [" + std::to_string(lo) + ", " +
         std::to_string(hi) + "]");
  }
  return x;
}

int JsonFields::get_int(const json& obj, const char* key, int64_t lo, int64_t hi) const {
  return static_cast<int>(as_int(member(obj, key), key, lo, hi));
}

float JsonFields::get_float(const json& obj, const char* key) const {
  const json& v = member(obj, key);
  if (!v.is_number()) fail(std::string("'") + key + "' must be a number");
  const double d = v.get<double>();
  if (!std::isfinite(d) || std::fabs(d) > 3.0e38) fail(std::string("'") + key + "' not finite");
  return static_cast<float>(d);
}

std::string JsonFields::get_string(const json& obj, const char* key) const {
  const json& v = member(obj, key);
  if (!v.is_string()) fail(std::string("'") + key + "' must be a string");
  return v.get<std::string>();
}

void JsonFields::get_pair(const json& obj, const char* key, int lo, int hi, int* a, int* b) const {
  const json& v = member(obj, key);
  if (!v.is_array() || v.size() != 2) fail(std::string("'") + key + "' must be [h, w]");
  *a = static_cast<int>(as_int(v[0], key, lo, hi));
  *b = static_cast<int>(as_int(v[1], key, lo, hi));
}

}  // namespace pactq::rt::detail
