// ONNX export: a trained model or checkpoint -> an .onnx file (QCDQ or
// QONNX, export/onnx/onnx_options.h), built by the model's own lowering
// (OnnxLowering), checked by the ONNX checker and strict shape inference,
// written atomically. docs/onnx.md describes the graph.
//
//   onnx::ModelProto m = build_onnx_model(model, mean, std, options, meta);
//   write_onnx_model(m, "model.onnx");
#pragma once
#include <onnx/onnx_pb.h>

#include <string>
#include <vector>

#include "pactq/export/checkpoint_export.h"
#include "pactq/export/export_plan.h"
#include "pactq/export/onnx/onnx_options.h"
#include "pactq/models/model.h"

namespace pactq::export_::onnx_export {

// Puts the model in eval mode. mean/std as build_export_plan (empty: 0 / 1).
// Throws std::invalid_argument for models without a lowering.
onnx::ModelProto build_onnx_model(models::QuantModel& model, std::vector<float> mean,
                                  std::vector<float> std, const OnnxOptions& options,
                                  const ExportMetadata& meta);

// onnx::checker::check_model, then shape inference with type checks and
// node errors fatal (the checker alone does not type-check a graph).
// Throws std::runtime_error("<what>: ONNX checker: ...").
void check_onnx_model(const onnx::ModelProto& model, const std::string& what);

// Checks the model, writes it to a temporary file, checks that file as read
// back, then renames it over `path`. Returns the file size.
size_t write_onnx_model(const onnx::ModelProto& model, const std::string& path);

// Reads and parses an .onnx file (std::runtime_error naming it otherwise).
onnx::ModelProto read_onnx_model(const std::string& path);

// export_checkpoint for ONNX: the same model, metadata and report.
ExportReport export_checkpoint_onnx(const std::string& checkpoint, const std::string& out_path,
                                    const OnnxOptions& options);

}  // namespace pactq::export_::onnx_export
