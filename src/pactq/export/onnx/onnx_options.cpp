#include "pactq/export/onnx/onnx_options.h"

#include <stdexcept>

namespace pactq::export_::onnx_export {

OnnxFormat parse_onnx_format(const std::string& name) {
  if (name == "qcdq") return OnnxFormat::kQcdq;
  if (name == "qonnx") return OnnxFormat::kQonnx;
  throw std::invalid_argument("unknown ONNX format '" + name + "'; valid: qcdq, qonnx");
}

const char* onnx_format_name(OnnxFormat f) {
  return f == OnnxFormat::kQcdq ? "qcdq" : "qonnx";
}

}  // namespace pactq::export_::onnx_export
