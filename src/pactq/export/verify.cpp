#include "pactq/export/verify.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <stdexcept>

#include "pactq/common/format.h"
#include "pactq/data/loader.h"
#include "pactq/export/checkpoint_export.h"
#include "pactq/export/plan_builder.h"
#include "pactq/export/reference_executor.h"
#include "pactq/runtime/model.h"
#include "pactq/runtime/quant_format.h"
#include "pactq/train/data_setup.h"

namespace pactq::export_ {

namespace {

// NaN when nothing was compared: 100% would claim a match that was never checked.
double percent_floor(int64_t matched, int64_t compared) {
  if (compared == 0) return std::numeric_limits<double>::quiet_NaN();
  return std::floor(1e6 * static_cast<double>(matched) / static_cast<double>(compared)) / 1e4;
}

}  // namespace

double VerifyResult::NodeMatch::match_percent() const {
  return percent_floor(matched, compared);
}
double VerifyResult::NodeMatch::ref_match_percent() const {
  return percent_floor(ref_matched, compared);
}

std::string VerifyResult::summary() const {
  // Code percentages, or said as such when no code was compared.
  const bool none = codes_compared == 0;
  const std::string fq_codes =
      none ? std::string("no codes compared")
           : pactq::format("{:.4f}% ({}/{})", percent_floor(codes_matched, codes_compared),
                           codes_matched, codes_compared);
  const std::string ref_codes =
      none ? std::string("no codes compared")
           : pactq::format(
                 "{:.4f}% ({}/{}) node by node on the runtime's inputs, {:.4f}% end to end",
                 percent_floor(ref_codes_matched, codes_compared), ref_codes_matched,
                 codes_compared, percent_floor(ref_chain_codes_matched, codes_compared));
  std::string s = pactq::format(
      "verify on {} images ({} for activation codes):\n"
      "  runtime vs fake-quantized LibTorch model: prediction agreement {:.2f}% ({}/{}), top-1 "
      "libtorch {:.2f}%, runtime {:.2f}%; exact activation codes {}; max |logit diff| {:.4g}\n"
      "  runtime vs LibTorch deploy-exact reference: prediction agreement {:.2f}% ({}/{}); exact "
      "activation codes {}; max |logit diff| {:.4g} for the output node on the runtime's inputs, "
      "{:.4g} end to end",
      images, code_images, agreement, agree, images, torch_top1, runtime_top1, fq_codes,
      max_logit_diff, ref_agreement, ref_agree, images, ref_codes, ref_output_logit_diff,
      ref_max_logit_diff);
  // The verdict on the runtime: integer-path nodes must match exactly.
  std::string bad, float_nodes;
  int exact_nodes = 0;
  int64_t float_compared = 0, float_matched = 0;
  for (const NodeMatch& n : per_node) {
    if (n.ref_exact) {
      ++exact_nodes;
      if (n.ref_matched != n.compared) bad += (bad.empty() ? "" : ", ") + n.node;
    } else {
      float_nodes += (float_nodes.empty() ? "" : ", ") + n.node;
      float_compared += n.compared;
      float_matched += n.ref_matched;
    }
  }
  if (codes_compared == 0) {
    return s + "\n  => no activation codes compared: the runtime's codes were not checked";
  }
  if (!bad.empty()) {
    s += "\n  => RUNTIME MISMATCH: integer-path node(s) " + bad +
         " differ from the deploy-exact reference";
    return s;
  }
  s += pactq::format("\n  => runtime exact: {} integer-path nodes bit-identical to the reference",
                     exact_nodes);
  if (!float_nodes.empty()) {
    s += pactq::format(
        "; float-path nodes ({}): {} of {} codes differ (LibTorch's float32 summation order)",
        float_nodes, float_compared - float_matched, float_compared);
  }
  return s;
}

namespace {

// A runtime node's output as the reference executor's value: [N, C, H, W]
// float32, CODES as the codes themselves.
at::Tensor runtime_value(const rt::NodeOutput& o) {
  const std::vector<int64_t> shape{o.batch, o.channels, o.height, o.width};
  if (o.codes) {
    return at::from_blob(const_cast<uint8_t*>(o.code_values.data()), shape,
                         at::TensorOptions().dtype(at::kByte))
        .to(at::kFloat);
  }
  return at::from_blob(const_cast<float*>(o.values.data()), shape,
                       at::TensorOptions().dtype(at::kFloat))
      .clone();
}

}  // namespace

VerifyResult verify(models::QuantModel& model, const ExportPlan& plan, rt::Model& runtime,
                    data::DataLoader& pixels, const std::vector<float>& mean,
                    const std::vector<float>& std, int64_t code_images) {
  const auto t0 = std::chrono::steady_clock::now();
  at::NoGradGuard no_grad;
  model.eval();
  VerifyResult r;
  const ReferenceExecutor ref(plan);
  const int64_t channels = model.input_shape().channels;
  at::Tensor mean_t = at::zeros({1, channels, 1, 1}), std_t = at::ones({1, channels, 1, 1});
  if (!mean.empty()) mean_t = at::tensor(mean).reshape({1, channels, 1, 1});
  if (!std.empty()) std_t = at::tensor(std).reshape({1, channels, 1, 1});
  // Codes nodes (compared); per node, whether a codes node reads it and the
  // last node reading its value.
  std::map<std::string, size_t> node_index;
  std::vector<size_t> last_use(ref.size());
  std::vector<bool> needed(ref.size(), false);
  for (size_t i = 0; i < ref.size(); ++i) {
    last_use[i] = i;
    for (size_t j : ref.inputs(i)) last_use[j] = i;
    if (ref.type(i).codes) {
      needed[i] = true;
      for (size_t j : ref.inputs(i)) needed[j] = true;
      node_index[ref.name(i)] = r.per_node.size();
      VerifyResult::NodeMatch nm;
      nm.node = ref.name(i);
      nm.ref_exact = ref.exact(i);
      r.per_node.push_back(nm);
    }
  }
  pixels.start_epoch(0);
  while (auto batch = pixels.next()) {
    const at::Tensor p = batch->images.to(at::kFloat).contiguous();
    const int64_t n = p.size(0);
    // Exactly the runtime input node: x = (p - mean) / std in float32.
    const at::Tensor x = (p - mean_t) / std_t;
    const at::Tensor logits = model.forward(x).to(at::kFloat).contiguous();
    const std::vector<float> rl = runtime.run(p.data_ptr<float>(), static_cast<int>(n));
    const at::Tensor rt_logits = at::from_blob(const_cast<float*>(rl.data()), logits.sizes(),
                                               at::TensorOptions().dtype(at::kFloat))
                                     .clone();
    // Every runtime node's value for the batch, from one pass.
    const rt::Trace trace = runtime.trace(p.data_ptr<float>(), static_cast<int>(n));
    const std::vector<at::Tensor> chain = ref.run(p);
    const at::Tensor ref_logits = chain.at(ref.output_index()).reshape(logits.sizes());
    {  // The output node alone, on the runtime's values of its inputs.
      const size_t out = ref.output_index();
      std::vector<at::Tensor> in;
      if (ref.inputs(out).empty()) in.push_back(p);
      for (size_t j : ref.inputs(out)) {
        in.push_back(runtime_value(trace.output(ref.name(j))));
      }
      const at::Tensor own = ref.run_node(out, in).reshape(logits.sizes());
      r.ref_output_logit_diff =
          std::max(r.ref_output_logit_diff, (own - rt_logits).abs().max().item<double>());
    }
    const at::Tensor tp = logits.argmax(1), rp = rt_logits.argmax(1);
    const at::Tensor labels = batch->labels.to(at::kLong);
    r.agree += tp.eq(rp).sum().item<int64_t>();
    r.ref_agree += ref_logits.argmax(1).eq(rp).sum().item<int64_t>();
    r.torch_correct += tp.eq(labels).sum().item<int64_t>();
    r.runtime_correct += rp.eq(labels).sum().item<int64_t>();
    r.max_logit_diff = std::max(r.max_logit_diff, (logits - rt_logits).abs().max().item<double>());
    r.ref_max_logit_diff =
        std::max(r.ref_max_logit_diff, (ref_logits - rt_logits).abs().max().item<double>());
    r.images += n;

    const int64_t k = std::min<int64_t>(n, code_images - r.code_images);
    if (k > 0 && !r.per_node.empty()) {
      const at::Tensor pk = p.slice(0, 0, k).contiguous();
      const auto values = plan.trace(x.slice(0, 0, k));
      // The runtime's value of every needed node on the first k images, kept
      // until its last reader has run on it.
      std::vector<at::Tensor> mine(ref.size());
      for (size_t i = 0; i < ref.size(); ++i) {
        if (!needed[i]) continue;
        const rt::NodeOutput o = trace.output(ref.name(i));
        mine[i] = runtime_value(o).slice(0, 0, k).contiguous();
        auto it = node_index.find(ref.name(i));
        if (it != node_index.end()) {
          const at::Tensor got = mine[i].reshape({-1});
          // LibTorch's PACT output is code * (alpha / n): recover the code.
          const at::Tensor& t = values.at(i).second;
          const float scale_inv = rt::format::requant_inverse(o.alpha, o.bits);
          const at::Tensor codes =
              (t.to(at::kFloat).contiguous().reshape({-1}) * scale_inv).round();
          std::vector<at::Tensor> in;
          if (ref.inputs(i).empty()) in.push_back(pk);
          for (size_t j : ref.inputs(i)) in.push_back(mine[j]);
          const at::Tensor own = ref.run_node(i, in).reshape({-1});
          const at::Tensor chained = chain[i].slice(0, 0, k).reshape({-1});
          if (codes.numel() != got.numel() || own.numel() != got.numel()) {
            throw std::logic_error("verify: node " + ref.name(i) + " has " +
                                   std::to_string(got.numel()) + " runtime values, LibTorch " +
                                   std::to_string(codes.numel()) + ", the reference " +
                                   std::to_string(own.numel()));
          }
          auto& nm = r.per_node[it->second];
          const int64_t matched = got.eq(codes).sum().item<int64_t>();
          const int64_t ref_matched = got.eq(own).sum().item<int64_t>();
          nm.compared += got.numel();
          nm.matched += matched;
          nm.ref_matched += ref_matched;
          r.codes_compared += got.numel();
          r.codes_matched += matched;
          r.ref_codes_matched += ref_matched;
          r.ref_chain_codes_matched += got.eq(chained).sum().item<int64_t>();
        }
        for (size_t j : ref.inputs(i))
          if (last_use[j] == i) mine[j] = at::Tensor();
        if (last_use[i] == i) mine[i] = at::Tensor();
      }
      r.code_images += k;
    }
  }
  if (r.images == 0) {
    // "0.00% (0/0)" would read as a total disagreement; nothing was compared.
    throw std::runtime_error("verify: the " + pixels.dataset().info().name +
                             " test set gave no images, so nothing was compared");
  }
  {
    r.agreement = 100.0 * r.agree / r.images;
    r.ref_agreement = 100.0 * r.ref_agree / r.images;
    r.torch_top1 = 100.0 * r.torch_correct / r.images;
    r.runtime_top1 = 100.0 * r.runtime_correct / r.images;
  }
  r.code_match = percent_floor(r.codes_matched, r.codes_compared);
  r.ref_code_match = percent_floor(r.ref_codes_matched, r.codes_compared);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

VerifyResult verify_checkpoint(const std::string& checkpoint, const std::string& pqm,
                               int64_t images, const std::string& data_dir, int64_t code_images,
                               int threads) {
  RebuiltModel r = rebuild_from_checkpoint(checkpoint);
  const ExportPlan plan = build_export_plan(*r.model, r.config.mean, r.config.std);
  rt::Model runtime = rt::Model::load(pqm);
  if (threads > 0) runtime.set_threads(threads);
  train::TrainConfig c = r.config;
  if (!data_dir.empty()) c.data_dir = data_dir;
  const size_t channels = static_cast<size_t>(r.model->input_shape().channels);
  c.mean.assign(channels, 0.f);  // pixels in [0, 1]: v / 255
  c.std.assign(channels, 1.f);
  c.init_from.clear();
  c.limit_test = images;
  c.batch_size = 256;
  auto loader = train::make_test_loader(c);
  return verify(*r.model, plan, runtime, *loader, r.config.mean, r.config.std, code_images);
}

}  // namespace pactq::export_
