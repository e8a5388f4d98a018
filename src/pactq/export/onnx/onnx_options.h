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
  // The QONNX integer quantizer's op name: "IntQuant" (current qonnx) or its
  // older name "Quant", which FINN and hls4ml releases before it read.
  std::string qonnx_quant_op = "IntQuant";
};

// Opset 13: the uint8/int8 Clip of the QCDQ chain needs opset 12; 13 is the
// QDQ opset ONNX Runtime (since 1.6) and TensorRT's explicit quantization
// document, and adds per-axis QuantizeLinear/DequantizeLinear for readers
// that convert to per-channel forms. IR 7 is the IR version opset 13 was
// released with, so older readers accept the file.
inline constexpr int kOpsetVersion = 13;
inline constexpr int kIrVersion = 7;
inline constexpr const char* kQonnxDomain = "qonnx.custom_op.general";
inline constexpr int kQonnxDomainVersion = 1;

// "qcdq" / "qonnx" (std::invalid_argument naming the valid ones otherwise).
OnnxFormat parse_onnx_format(const std::string& name);
const char* onnx_format_name(OnnxFormat f);

}  // namespace pactq::export_::onnx_export
