#include "pactq/export/onnx/onnx_export.h"

#include <ATen/core/grad_mode.h>
#include <onnx/checker.h>
#include <onnx/shape_inference/implementation.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "pactq/common/atomic_file.h"
#include "pactq/common/format.h"
#include "pactq/export/layer_fold.h"
#include "pactq/export/onnx/onnx_lowering.h"
#include "pactq/export/plan_builder.h"
#include "pactq/models/registry.h"

namespace pactq::export_::onnx_export {

namespace {

void set_metadata(onnx::ModelProto& m, const std::string& key, const std::string& value) {
  if (value.empty()) return;
  onnx::StringStringEntryProto* e = m.add_metadata_props();
  e->set_key(key);
  e->set_value(value);
}

}  // namespace

onnx::ModelProto build_onnx_model(models::QuantModel& model, std::vector<float> mean,
                                  std::vector<float> std, const OnnxOptions& options,
                                  const ExportMetadata& meta) {
  if (options.qonnx_quant_op != "IntQuant" && options.qonnx_quant_op != "Quant") {
    throw std::invalid_argument("QONNX quantizer op '" + options.qonnx_quant_op +
                                "': expected IntQuant or Quant");
  }
  model.eval();
  at::NoGradGuard no_grad;
  const models::InputShape shape = model.input_shape();
  resolve_normalization(shape.channels, mean, std);

  onnx::ModelProto m;
  m.set_ir_version(kIrVersion);
  m.set_producer_name("pactq");
  const auto space = meta.producer.find(' ');
  if (space != std::string::npos) m.set_producer_version(meta.producer.substr(space + 1));
  m.set_domain("org.pactq");
  m.set_model_version(1);
  m.mutable_opset_import()->Add()->set_version(kOpsetVersion);  // default domain
  if (options.format == OnnxFormat::kQonnx) {
    onnx::OperatorSetIdProto* q = m.mutable_opset_import()->Add();
    q->set_domain(kQonnxDomain);
    q->set_version(kQonnxDomainVersion);
  }
  m.set_doc_string(pactq::format(
      "{} exported by pactq ({}). Input 'pixels': [batch, {}, {}, {}] float32 in [0, 1], "
      "normalised inside the graph; output 'logits'. {}",
      meta.model, meta.precision, shape.channels, shape.height, shape.width,
      options.format == OnnxFormat::kQcdq
          ? "QCDQ: QuantizeLinear -> Clip -> DequantizeLinear per quantized tensor."
          : "QONNX: IntQuant / BipolarQuant (qonnx.custom_op.general) per quantized tensor."));
  set_metadata(m, "model", meta.model);
  set_metadata(m, "precision", meta.precision);
  set_metadata(m, "source", meta.source);
  set_metadata(m, "pactq_format", onnx_format_name(options.format));
  if (!meta.classes.empty()) set_metadata(m, "classes", nlohmann::json(meta.classes).dump());

  onnx::GraphProto* graph = m.mutable_graph();
  graph->set_name(meta.model.empty() ? model.model_name() : meta.model);
  OnnxLowering lowering(graph, options);
  models::lower_model(model, lowering, lowering.input(shape, mean, std));
  lowering.finish(model.num_classes());
  return m;
}

void check_onnx_model(const onnx::ModelProto& model, const std::string& what) {
  try {
    onnx::checker::check_model(model);
    onnx::ModelProto typed = model;
    onnx::shape_inference::InferShapes(typed, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(true, 1, false));
  } catch (const std::exception& e) {
    throw std::runtime_error(what + ": ONNX checker: " + e.what());
  }
}

size_t write_onnx_model(const onnx::ModelProto& model, const std::string& path) {
  check_onnx_model(model, path);
  std::string bytes;
  if (!model.SerializeToString(&bytes)) {
    throw std::runtime_error(path + ": cannot serialise the ONNX model (over 2 GiB?)");
  }
  replace_file_atomically(path, [&](const std::string& temp) {
    FILE* f = std::fopen(temp.c_str(), "wb");
    if (f == nullptr) throw std::runtime_error(path + ": cannot create: " + std::strerror(errno));
    const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
    if (std::fclose(f) != 0 || !ok) {
      throw std::runtime_error(path + ": write failed: " + std::strerror(errno));
    }
    try {  // the bytes as a reader will see them
      onnx::checker::check_model(temp);
    } catch (const std::exception& e) {
      throw std::runtime_error(path + ": ONNX checker on the written file: " + e.what());
    }
  });
  return bytes.size();
}

onnx::ModelProto read_onnx_model(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  std::ostringstream s;
  s << in.rdbuf();
  onnx::ModelProto m;
  if (!m.ParseFromString(s.str())) throw std::runtime_error(path + ": not an ONNX model");
  return m;
}

ExportReport export_checkpoint_onnx(const std::string& checkpoint, const std::string& out_path,
                                    const OnnxOptions& options) {
  RebuiltModel r = rebuild_from_checkpoint(checkpoint);
  std::string warning;
  const ExportMetadata meta = checkpoint_metadata(checkpoint, r, &warning);
  const onnx::ModelProto m = build_onnx_model(*r.model, r.config.mean, r.config.std, options, meta);
  ExportReport rep;
  rep.path = out_path;
  rep.file_bytes = write_onnx_model(m, out_path);
  // The fp32 size the .pqm report gives, from the same lowering.
  rep.fp32_weight_bytes =
      build_export_plan(*r.model, r.config.mean, r.config.std).fp32_weight_bytes();
  rep.nodes = static_cast<size_t>(m.graph().node_size());
  rep.model = meta.model;
  rep.precision = meta.precision;
  if (!warning.empty()) rep.warnings.push_back(warning);
  return rep;
}

}  // namespace pactq::export_::onnx_export
