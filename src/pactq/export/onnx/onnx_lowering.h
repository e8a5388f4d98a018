// OnnxLowering: the models' Lowering (models/lowering.h) that writes an ONNX
// graph instead of .pqm nodes. It takes the integer weight codes, the weight
// scale, the folded BatchNorm and each activation's alpha from the same
// functions as the .pqm plan builder (export/layer_fold.h), so both files
// hold the same codes and constants.
//
// One lowered layer, QCDQ flavour (QONNX: IntQuant / BipolarQuant in place
// of each Q -> Clip -> DQ, the weights as floats):
//
//   x -> Conv|Gemm(W) -> Mul(bn_scale) -> Add(bn_bias) [-> Add(shortcut)] -> act
//   W   = DequantizeLinear(Clip(codes 2q - n_w, -n_w, n_w), w_scale / n_w)
//   act = QuantizeLinear(alpha / n) -> Clip(0, n) -> DequantizeLinear(alpha / n)
//         (full precision: Clip(0, alpha) or Relu)
//
// Tensor names follow the .pqm node names: "<node>" is the node's value,
// "<node>.codes" its uint8 activation codes (QCDQ), "<node>.weight_codes" the
// weight codes; the input is "pixels" and the output "logits".
#pragma once
#include <onnx/onnx_pb.h>

#include <cstdint>
#include <string>
#include <vector>

#include "pactq/export/export_plan.h"
#include "pactq/export/onnx/onnx_graph.h"
#include "pactq/export/onnx/onnx_options.h"
#include "pactq/models/lowering.h"
#include "pactq/models/model.h"

namespace pactq::export_::onnx_export {

class OnnxLowering : public models::Lowering {
 public:
  using LoweredValue = models::LoweredValue;

  OnnxLowering(onnx::GraphProto* graph, OnnxOptions options);

  // The graph input "pixels" [batch, C, H, W] in [0, 1], normalised in the
  // graph as (p - mean) / std, the .pqm input node's arithmetic.
  LoweredValue input(const models::InputShape& shape, const std::vector<float>& mean,
                     const std::vector<float>& std);
  // Names the last value "logits" [batch, classes] and declares it the output.
  void finish(int64_t classes);

  LoweredValue linear(const std::string& name, nn::QLinear fc, LoweredValue x,
                      torch::nn::BatchNorm1d bn, nn::PactReLU act) override;
  LoweredValue affine(const std::string& name, LoweredValue x, torch::nn::BatchNorm2d bn,
                      nn::PactReLU act) override;
  LoweredValue max_pool(const std::string& name, torch::nn::MaxPool2d pool,
                        LoweredValue x) override;
  LoweredValue global_avg_pool(const std::string& name, LoweredValue x) override;
  LoweredValue flatten(const std::string& name, LoweredValue x) override;

 protected:
  LoweredValue conv_node(const std::string& name, nn::QConv2d conv, LoweredValue x,
                         torch::nn::BatchNorm2d bn, nn::PactReLU act,
                         const models::ResidualInput* residual) override;

 private:
  struct Value {
    std::string tensor;
    ValueType type;
  };
  const Value& value(LoweredValue v) const;
  LoweredValue add_value(std::string tensor, ValueType type);

  // The float weight tensor the layer multiplies (codes dequantized in-graph).
  std::string weight(const std::string& node, nn::QuantizedWeight& q, const at::Tensor& w);
  // cur * scale + bias per channel (channel_dims: [C, 1, 1] or [C]); skips
  // a scale of all ones and a bias of all zeros.
  std::string fold(const std::string& node, std::string cur, const std::vector<double>& scale,
                   const std::vector<double>& bias, std::vector<int64_t> channel_dims);
  // The activation that ends node `node` (its output named `node`); `first`
  // is the graph's node count when the layer began.
  LoweredValue activate(const std::string& node, const std::string& cur, nn::PactReLU act,
                        int first);

  std::string uint8_zero();
  std::string float_zero();
  std::string bitwidth(int bits);

  onnx::GraphProto* graph_;
  OnnxGraph g_;
  OnnxOptions options_;
  std::vector<Value> values_;  // indexed by LoweredValue::id
};

}  // namespace pactq::export_::onnx_export
