// `pactq bench`: end-to-end benchmarks. `bench train` times float vs
// quantized training steps interleaved in one process (and the Python peer
// with --peer).

#include <ATen/ATen.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

#include "pactq/cli/commands.h"
#include "pactq/cli/shipped_files.h"
#include "pactq/common/format.h"
#include "pactq/nn/precision_policy.h"
#include "pactq/quant/bits.h"
#include "pactq/quant/weight_quant.h"
#include "pactq/train/compute_threads.h"
#include "pactq/train/device.h"
#include "pactq/train/model_setup.h"
#include "pactq/train/step_benchmark.h"

namespace pactq::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPeerScript = "py_resnet20_pact.py";

// The peer script of ../shared/peer beside the source tree (found as the
// shipped files are: cli/shipped_files.h). Empty if it is not there.
std::string default_peer_script() {
  return find_shipped_file(std::string("../shared/peer/") + kPeerScript);
}

// One shell word (the paths go through popen's sh).
std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// What the peer is asked to run. It trains resnet20 with DoReFa weights and
// PACT activations, first conv and last linear in float; positional BITS
// sets the activations (32: ReLU), --wbits the weights (32: float).
struct PeerRun {
  int wbits = quant::kFullPrecision, abits = quant::kFullPrecision;
};

// The peer's version of `q`, or one line saying why it has none.
PeerRun peer_run(const train::TrainConfig& q, const nn::PrecisionPolicy& p) {
  auto refuse = [](const std::string& why) { throw std::invalid_argument("--peer: " + why); };
  if (q.model != "resnet20") {
    refuse("the Python peer trains resnet20 only, not --model " + q.model);
  }
  const bool wq = !quant::is_full_precision(p.wbits);
  if (wq && p.wquant != quant::WeightQuantKind::kDoReFa) {
    refuse("the Python peer quantizes weights with DoReFa only, not --weight-quant " +
           q.weight_quant);
  }
  if (wq && p.wbits == 1) {
    refuse(
        "the Python peer has no 1-bit weight quantizer (sign x mean|w|); use --wbits 2..8 or fp");
  }
  const bool edges_float = p.first_last == nn::FirstLastRule::kFullPrecision ||
                           (p.first_last == nn::FirstLastRule::kSame && !wq);
  if (!edges_float) {
    refuse("the Python peer keeps the first and last layers in float; use --first-last fp, not " +
           q.first_last);
  }
  return {p.wbits, p.abits};
}

// Runs the Python peer script and returns its median step seconds. On CUDA
// it runs on the same device ("cuda:N" as the peer's torch spells it), and
// with torch.compile when `compile`.
double run_peer(const std::string& python, const std::string& script, const PeerRun& r, int steps,
                int batch, int threads, const at::Device& device, bool compile) {
  std::string command =
      pactq::format("{} {} {} {} --wbits {} --batch {} --threads {}", shell_quote(python),
                    shell_quote(script), r.abits, steps, r.wbits, batch, threads);
  if (device.is_cuda()) command += " --device " + device.str();
  if (compile) command += " --compile";
  command += " 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) throw std::runtime_error("--peer: cannot run " + command);
  std::string output;
  std::array<char, 4096> buf{};
  while (fgets(buf.data(), buf.size(), pipe.get()) != nullptr) output += buf.data();
  const int status = pclose(pipe.release());
  std::smatch m;
  static const std::regex re("median_step_s=([0-9.]+)");
  if (status != 0 || !std::regex_search(output, m, re)) {
    throw std::runtime_error(pactq::format("--peer: {} {} (exit status {}; output: {})", command,
                                           status != 0 ? "failed" : "printed no median_step_s",
                                           status, output.substr(0, 300)));
  }
  return std::stod(m[1]);
}

std::string widths(int wbits, int abits) {
  return "W" + quant::bits_to_string(wbits) + "/A" + quant::bits_to_string(abits);
}

void add_bench_train(CLI::App& bench) {
  struct Args {
    train::TrainConfig config;
    train::StepBenchmarkOptions options;
    bool peer = false;
    std::string peer_script;  // empty: default_peer_script()
    std::string python = "/usr/bin/python3";
    bool memory = true;
  };
  auto a = std::make_shared<Args>();
  a->config.model = "resnet20";
  CLI::App* cmd = bench.add_subcommand(
      "train", "float vs quantized training step time (and vs the Python peer)");
  cmd->add_option("--model", a->config.model, "model")->capture_default_str();
  cmd->add_option("--batch-size", a->options.batch_size, "batch size")->capture_default_str();
  cmd->add_option("--wbits", a->config.wbits, "weight bits")->capture_default_str();
  cmd->add_option("--abits", a->config.abits, "activation bits")->capture_default_str();
  cmd->add_option("--first-last", a->config.first_last, "fp | 8 | same")->capture_default_str();
  cmd->add_option("--weight-quant", a->config.weight_quant, "dorefa | sawb")->capture_default_str();
  cmd->add_option("--steps", a->options.steps, "timed steps per variant")->capture_default_str();
  cmd->add_option("--warmup", a->options.warmup, "untimed steps per variant")
      ->capture_default_str();
  cmd->add_option("--threads", a->options.threads, "compute threads (0: all cores)");
  cmd->add_option("--device", a->options.device,
                  "cpu | cuda | cuda:N | auto (CUDA when usable); on CUDA, --peer also runs the "
                  "peer under torch.compile and the peak-memory measurement (CPU allocator) is "
                  "skipped")
      ->capture_default_str();
  cmd->add_option("--amp", a->options.amp,
                  "off | bf16: autocast convolutions and linear layers to bfloat16, as train "
                  "--amp does (the peer runs float32)")
      ->capture_default_str();
  cmd->add_flag("--channels-last", a->options.channels_last,
                "NHWC weights and batch, as train --channels-last");
  cmd->add_flag("--cuda-graph", a->options.cuda_graph,
                "CUDA: forward and backward replayed from a CUDA graph, as train --cuda-graph");
  cmd->add_flag("--peer", a->peer, "also run the Python eager peer at the same bits");
  const std::string found = default_peer_script();
  cmd->add_option("--peer-script", a->peer_script,
                  "the peer script (default: ../shared/peer/py_resnet20_pact.py beside the "
                  "source tree of this binary, or under PACTQ_DATA_DIR)")
      ->default_str(found.empty() ? "not found" : found);
  cmd->add_option("--python", a->python, "Python with torch for the peer")->capture_default_str();
  cmd->add_flag("!--no-memory", a->memory, "skip the peak-memory measurement");
  cmd->callback([a] {
    // Bad widths and peer settings fail here, naming the option, before any
    // timing runs.
    const nn::PrecisionPolicy policy = a->config.precision_policy();
    const at::Device device = train::resolve_device(a->options.device);
    train::check_amp_spec(a->options.amp);
    PeerRun peer;
    std::string script = a->peer_script;
    if (a->peer) {
      peer = peer_run(a->config, policy);
      if (script.empty()) {
        script = default_peer_script();
        if (script.empty()) {
          throw std::invalid_argument(
              "--peer-script: " +
              shipped_file_search_note(std::string("../shared/peer/") + kPeerScript) +
              "; give its path");
        }
      }
      if (!fs::is_regular_file(script)) {
        throw std::invalid_argument("--peer-script: " + script + " not found");
      }
      if (a->python.find('/') != std::string::npos && !fs::exists(a->python)) {  // else PATH
        throw std::invalid_argument("--python: " + a->python + " not found");
      }
    }
    train::TrainConfig fp = a->config;
    fp.wbits = fp.abits = "fp";
    fp.first_last = "fp";  // "8" would quantize the float baseline's first and last layers
    fp.act_quant = "relu";
    const train::TrainConfig& q = a->config;
    const auto t = train::benchmark_training_steps({fp, q}, a->options);
    const double ratio = t[1].median() / t[0].median();
    pactq::print(
        "bench train: {} batch {} on {}{}, {} threads, {} timed steps each (interleaved)\n",
        q.model, a->options.batch_size, device.str(),
        std::string(a->options.amp == "off" ? "" : " with --amp " + a->options.amp) +
            (a->options.channels_last ? " (channels_last)" : "") +
            (a->options.cuda_graph ? " (CUDA graph)" : ""),
        at::get_num_threads(), a->options.steps);
    pactq::print("  ratio W{}/A{} / float: {:.3f}x\n", q.wbits, q.abits, ratio);
    for (const auto& s : t) {
      pactq::print("  {:<22} median {:7.1f} ms  ({:.0f} img/s)\n", s.label, 1e3 * s.median(),
                   a->options.batch_size / s.median());
    }
    if (a->memory && device.is_cpu()) {
      const auto m = train::measure_step_memory({fp, q}, a->options.batch_size);
      pactq::print("  peak step memory: float {:.1f} MB, W{}/A{} {:.1f} MB ({:.2f}x)\n",
                   m[0].peak_mb(), q.wbits, q.abits, m[1].peak_mb(),
                   static_cast<double>(m[1].peak_bytes) / m[0].peak_bytes);
    }
    if (a->peer) {
      const int threads = at::get_num_threads(), batch = a->options.batch_size;
      const std::string w = widths(peer.wbits, peer.abits);
      // On CUDA the strongest Python baseline is torch.compile: report both.
      for (const bool compile : {false, true}) {
        if (compile && !device.is_cuda()) break;
        const char* kind = compile ? "torch.compile" : "eager";
        const char* which = compile ? "compiled peer" : "peer";
        const double peer_fp = run_peer(a->python, script, PeerRun{}, a->options.steps, batch,
                                        threads, device, compile);
        const double peer_q =
            run_peer(a->python, script, peer, a->options.steps, batch, threads, device, compile);
        pactq::print("  peer (Python {}, {}): float {:.1f} ms, {} {:.1f} ms ({:.3f}x)\n", kind,
                     script, 1e3 * peer_fp, w, 1e3 * peer_q, peer_q / peer_fp);
        pactq::print("  pactq vs {} at {}: {:.2f}x faster (float: {:.2f}x)\n", which, w,
                     peer_q / t[1].median(), peer_fp / t[0].median());
      }
    }
  });
}

}  // namespace

void add_bench_onnx(CLI::App& bench);     // bench_onnx_command.cpp
void add_bench_profile(CLI::App& bench);  // bench_profile.cpp

void add_bench_command(CLI::App& app) {
  CLI::App* bench = app.add_subcommand("bench", "benchmarks (ratios measured in one process)");
  bench->require_subcommand(1);
  add_bench_train(*bench);
  add_bench_run(*bench);
  add_bench_onnx(*bench);
  add_bench_profile(*bench);
}

}  // namespace pactq::cli
