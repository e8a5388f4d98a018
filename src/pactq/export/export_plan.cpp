#include "pactq/export/export_plan.h"

#include <ATen/core/grad_mode.h>

#include <filesystem>
#include <map>

#include "pactq/runtime/writer.h"

namespace pactq::export_ {

void ExportPlan::add_to(rt::ModelWriter& w, const ExportMetadata& meta) const {
  for (const Step& s : steps_) std::visit([&](const auto& n) { w.add(n); }, s.node);
  w.set_output(output());
  if (!meta.model.empty()) w.set_model(meta.model);
  if (!meta.classes.empty()) w.set_classes(meta.classes);
  if (!meta.producer.empty()) w.set_producer(meta.producer);
  if (!meta.precision.empty()) w.set_metadata("precision", meta.precision);
  if (!meta.source.empty()) w.set_metadata("source", meta.source);
  w.set_metadata("fp32_weight_bytes", std::to_string(fp32_weight_bytes_));
}

std::vector<uint8_t> ExportPlan::serialize(const ExportMetadata& meta) const {
  rt::ModelWriter w;
  add_to(w, meta);
  return w.serialize(true);
}

size_t ExportPlan::write(const std::string& path, const ExportMetadata& meta) const {
  rt::ModelWriter w;
  add_to(w, meta);
  w.write(path, true);
  return static_cast<size_t>(std::filesystem::file_size(path));
}

std::vector<std::pair<std::string, at::Tensor>> ExportPlan::trace(const at::Tensor& x) const {
  at::NoGradGuard no_grad;
  std::vector<std::pair<std::string, at::Tensor>> values;
  std::map<std::string, size_t> index;
  for (const Step& s : steps_) {
    std::vector<at::Tensor> in;
    if (s.inputs.empty()) {
      in.push_back(x);
    } else {
      for (const auto& name : s.inputs) in.push_back(values.at(index.at(name)).second);
    }
    index[s.name] = values.size();
    values.emplace_back(s.name, s.torch_fn(in));
  }
  return values;
}

}  // namespace pactq::export_
