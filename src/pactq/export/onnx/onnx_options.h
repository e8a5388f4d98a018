// What the ONNX exporter writes: the flavour (standard QCDQ or the QONNX
// dialect) and the versions it targets (docs/onnx.md says why these).
#pragma once
#include <string>

namespace pactq::export_::onnx_export {

enum class OnnxFormat {
  kQcdq,   // QuantizeLinear -> Clip -> DequantizeLinear: any ONNX runtime executes it
  kQonnx,  // IntQuant / BipolarQuant (qonnx.custom_op.general): FINN, hls4ml, qonnx
};

struct OnnxOptions {
  OnnxFormat format = OnnxFormat::kQcdq;
  // The QONNX integer quantizer's op name: "IntQuant" (qonnx >= 0.4) or its
  // older name "Quant", which FINN and hls4ml releases before it read.
  std::string qonnx_quant_op = "IntQuant";
};

// Opset 13: the first with per-axis QuantizeLinear/DequantizeLinear and
// integer Clip, supported by every ONNX Runtime since 1.6 and by TensorRT's
// QDQ path. IR 7 is the IR version that opset 13 was released with, so
// older readers accept the file.
inline constexpr int kOpsetVersion = 13;
inline constexpr int kIrVersion = 7;
inline constexpr const char* kQonnxDomain = "qonnx.custom_op.general";
inline constexpr int kQonnxDomainVersion = 1;

// "qcdq" / "qonnx" (std::invalid_argument naming the valid ones otherwise).
OnnxFormat parse_onnx_format(const std::string& name);
const char* onnx_format_name(OnnxFormat f);

}  // namespace pactq::export_::onnx_export
