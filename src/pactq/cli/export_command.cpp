// `pactq export`: a training checkpoint -> a .pqm file for the integer runtime,
// optionally verified on test data against the fake-quantized LibTorch model
// and the deploy-exact LibTorch reference (export/reference_executor.h), or an
// ONNX file (QCDQ or QONNX, docs/onnx.md).
#include <ATen/Parallel.h>

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>

#include "pactq/cli/commands.h"
#include "pactq/common/format.h"
#include "pactq/export/checkpoint_export.h"
#ifdef PACTQ_WITH_ONNX
#include "pactq/export/onnx/onnx_export.h"
#endif
#include "pactq/export/verify.h"
#include "pactq/train/weights_file.h"

namespace pactq::cli {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The format to write: --format, else by the output's suffix. A suffix that
// contradicts the format is refused, so no tool opens a file of the other kind.
std::string resolve_format(const std::string& format, const std::string& out) {
  const bool onnx_name = ends_with(out, ".onnx");
  const bool weights_name = ends_with(out, ".safetensors");
  if (format.empty()) return onnx_name ? "qcdq" : weights_name ? "safetensors" : "pqm";
  if ((format == "safetensors") != weights_name) {
    throw std::invalid_argument(
        "-o " + out + ": --format safetensors writes the trained weights and only that is named " +
        "*.safetensors; give both or neither");
  }
  if (format == "safetensors") return format;
  if (format == "pqm" && onnx_name) {
    throw std::invalid_argument("-o " + out +
                                ": --format pqm writes a .pqm file; for ONNX use --format qcdq or "
                                "--format qonnx, or name the output .pqm");
  }
  if (format != "pqm" && !onnx_name) {
    throw std::invalid_argument("-o " + out + ": --format " + format +
                                " writes ONNX; name the output *.onnx");
  }
  return format;
}

}  // namespace

void add_export_command(CLI::App& app) {
  struct Args {
    std::string checkpoint;
    std::string out;
    int64_t verify = 0;
    int64_t verify_codes = 256;
    std::string data_dir;
    int threads = 0;
    std::string format;
    std::string qonnx_op = "IntQuant";
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "export",
      "export a checkpoint to a .pqm model for the integer runtime (pactq run), or to ONNX");
  cmd->add_option("checkpoint", args->checkpoint, "a .pt checkpoint written by pactq train")
      ->required();
  cmd->add_option("-o,--output", args->out, "output file (.pqm, .onnx or .safetensors)")
      ->required();
  cmd->add_option("--format", args->format,
                  "pqm | qcdq (standard ONNX QuantizeLinear/Clip/DequantizeLinear) | qonnx "
                  "(IntQuant/BipolarQuant for FINN, hls4ml) | safetensors (the trained float "
                  "weights, BatchNorm statistics and alphas, as --init-from reads them); "
                  "default: by the output's suffix (.onnx: qcdq), else pqm")
      ->check(CLI::IsMember({"pqm", "qcdq", "qonnx", "safetensors"}));
  cmd->add_option(
         "--qonnx-op", args->qonnx_op,
         "QONNX integer quantizer: IntQuant (current qonnx) or its former name Quant (older "
         "FINN, hls4ml)")
      ->check(CLI::IsMember({"IntQuant", "Quant"}))
      ->capture_default_str();
  cmd->add_option(
         "--verify", args->verify,
         "run N test images through the runtime, the fake-quantized LibTorch model and the "
         "deploy-exact LibTorch reference, and compare them")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--verify-codes", args->verify_codes,
                  "images (of the --verify ones) whose intermediate activation codes are compared")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--data-dir", args->data_dir, "test data directory (default: the checkpoint's)");
  cmd->add_option("--threads", args->threads, "threads for LibTorch and the runtime (0: default)")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([args] {
    std::error_code ec;  // -o naming the input would replace the checkpoint with the model
    if (std::filesystem::equivalent(args->checkpoint, args->out, ec)) {
      throw std::invalid_argument("-o " + args->out +
                                  ": is the checkpoint being exported; write the model elsewhere");
    }
    const std::string format = resolve_format(args->format, args->out);
    if (format != "pqm" && args->verify > 0) {
      throw std::invalid_argument(
          "--verify: compares a .pqm with the runtime; for an ONNX file run it in ONNX Runtime "
          "(docs/onnx.md, tools/ort/run_ort.js)");
    }
    if (args->threads > 0) at::set_num_threads(args->threads);
    if (format == "safetensors") {
      if (args->verify > 0) {
        throw std::invalid_argument(
            "--verify: compares a .pqm with the runtime; a .safetensors file is checked with "
            "pactq eval --model M --init-from FILE and the run's bits");
      }
      const train::WeightsFileReport r =
          train::write_weights_from_checkpoint(args->checkpoint, args->out);
      pactq::print("wrote {}: {} trained weights, {} tensors, {} bytes\n", r.path, r.model,
                   r.tensors, r.bytes);
      return;
    }
    if (format != "pqm") {
#ifdef PACTQ_WITH_ONNX
      namespace ox = export_::onnx_export;
      ox::OnnxOptions o;
      o.format = ox::parse_onnx_format(format);
      o.qonnx_quant_op = args->qonnx_op;
      const export_::ExportReport r = ox::export_checkpoint_onnx(args->checkpoint, args->out, o);
      pactq::print(
          "wrote {}: {} ({}), ONNX {} (opset {}, IR {}), {} nodes, {} bytes, ONNX checker "
          "passed; fp32 weights {} bytes\n",
          r.path, r.model, r.precision, format == "qcdq" ? "QCDQ" : "QONNX", ox::kOpsetVersion,
          ox::kIrVersion, r.nodes, r.file_bytes, r.fp32_weight_bytes);
      for (const auto& w : r.warnings) pactq::print(stderr, "pactq: warning: {}\n", w);
      return;
#else
      throw std::invalid_argument("--format " + format +
                                  ": this pactq was built without ONNX export (install "
                                  "libonnx-dev and configure with -DPACTQ_WITH_ONNX=ON)");
#endif
    }
    const export_::ExportReport r = export_::export_checkpoint(args->checkpoint, args->out);
    pactq::print("wrote {}: {} ({}), {} nodes, {} bytes; fp32 weights {} bytes (1/{:.2f})\n",
                 r.path, r.model, r.precision, r.nodes, r.file_bytes, r.fp32_weight_bytes,
                 r.file_bytes ? static_cast<double>(r.fp32_weight_bytes) / r.file_bytes : 0.0);
    for (const auto& w : r.warnings) pactq::print(stderr, "pactq: warning: {}\n", w);
    if (args->verify > 0) {
      const export_::VerifyResult v =
          export_::verify_checkpoint(args->checkpoint, args->out, args->verify, args->data_dir,
                                     args->verify_codes, args->threads);
      pactq::print("{}\n", v.summary());
      if (v.codes_compared > 0) {  // per node only when codes were compared (--verify-codes)
        pactq::print("  {:<24} {:>22} {:>26}\n", "exact codes per node", "vs fake-quant model",
                     "vs deploy-exact reference");
        for (const auto& n : v.per_node) {
          pactq::print("  {:<24} {:>21.4f}% {:>25.4f}%  of {}{}\n", n.node, n.match_percent(),
                       n.ref_match_percent(), n.compared, n.ref_exact ? "" : "  (float path)");
        }
      }
      pactq::print("verify took {:.1f}s\n", v.seconds);
    }
  });
}

}  // namespace pactq::cli
