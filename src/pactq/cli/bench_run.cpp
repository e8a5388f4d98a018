// `pactq bench run`: the integer runtime against what a deploying user would
// otherwise run on the same CPU: the same network in LibTorch fp32 (in this
// process) and, with --peer, PyTorch's own int8 (FX static quantization, a
// Python coprocess). Every round times each of them once, in turn, so the
// ratios are of medians measured in one run under the same conditions.

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "pactq/cli/commands.h"
#include "pactq/cli/coprocess.h"
#include "pactq/cli/shipped_files.h"
#include "pactq/cli/timing.h"
#include "pactq/common/format.h"
#include "pactq/runtime/model.h"
#include "pactq/train/compute_threads.h"
#include "pactq/train/model_setup.h"

namespace pactq::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kInt8Peer = "bench/peers/py_int8_peer.py";

// The networks the int8 peer builds, at the input size it builds them.
struct PeerNet {
  const char* name;
  int size;
};
constexpr PeerNet kPeerNets[] = {{"resnet20", 32}, {"preact_resnet18", 224}, {"alexnet_bn", 224}};

// The int8 peer (bench/peers), installed or in the source tree (cli/shipped_files.h).
std::string default_int8_peer() {
  return find_shipped_file(kInt8Peer);
}

// One measured quantity over the rounds.
struct Series {
  std::vector<double> s;  // seconds per call, one per round
  double median() const { return cli::median(s); }
  double min() const { return *std::min_element(s.begin(), s.end()); }
  double max() const { return *std::max_element(s.begin(), s.end()); }
};

std::string throughput(const Series& x, int batch) {
  return pactq::format("{:>7.0f} img/s  [{:.0f}-{:.0f}]", batch / x.median(), batch / x.max(),
                       batch / x.min());
}
std::string latency(const Series& x) {
  return pactq::format("{:>7.3f} ms     [{:.3f}-{:.3f}]", 1e3 * x.median(), 1e3 * x.min(),
                       1e3 * x.max());
}

// The int8 peer, started once, answering `round BATCH REPS` with its fp32 and
// int8 medians.
class Int8Peer {
 public:
  Int8Peer(const std::string& python, const std::string& script, const std::string& model,
           int threads, bool accuracy)
      : proc_(command(python, script, model, threads, accuracy), "--peer (" + script + ")") {
    info_ = parse(proc_.read_line());
  }
  const nlohmann::json& info() const { return info_; }
  // {fp32 seconds, int8 seconds}
  std::pair<double, double> round(int batch, int reps) {
    proc_.write_line(pactq::format("round {} {}", batch, reps));
    const nlohmann::json j = parse(proc_.read_line());
    if (j.contains("error")) throw std::runtime_error("--peer: " + j["error"].get<std::string>());
    return {j.at("fp32_s").get<double>(), j.at("int8_s").get<double>()};
  }

 private:
  static std::vector<std::string> command(const std::string& python, const std::string& script,
                                          const std::string& model, int threads, bool accuracy) {
    std::vector<std::string> c = {
        python, script, "--model", model, "--threads", std::to_string(threads), "--serve"};
    if (!accuracy) c.push_back("--no-accuracy");
    return c;
  }
  static nlohmann::json parse(const std::string& line) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      throw std::runtime_error("--peer: expected a JSON line from the peer, got: " +
                               line.substr(0, 200));
    }
    return j;
  }
  Coprocess proc_;
  nlohmann::json info_;
};

}  // namespace

void add_bench_run(CLI::App& bench) {
  struct Args {
    std::string model_path;
    int threads = 0;
    int batch = 64;
    int rounds = 5;
    int latency_reps = 50;
    int batch_reps = 3;
    bool peer = false;
    bool peer_accuracy = true;
    std::string peer_script;  // empty: default_int8_peer()
    std::string python = "/usr/bin/python3";
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = bench.add_subcommand(
      "run",
      "integer runtime vs LibTorch fp32 eval of the same network (and, with --peer, PyTorch "
      "int8): batch-1 latency, batch throughput, medians and ranges over interleaved rounds");
  cmd->add_option("model", a->model_path, "a .pqm file from pactq export")->required();
  cmd->add_option("--threads", a->threads, "threads for all (0: all cores)");
  cmd->add_option("--batch-size", a->batch, "throughput batch")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--rounds", a->rounds, "interleaved rounds (the median is reported)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--latency-reps", a->latency_reps, "batch-1 runs per round")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--batch-reps", a->batch_reps, "batch runs per round")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--peer", a->peer,
                "also time PyTorch int8 (FX static quantization, oneDNN, calibrated) on the same "
                "network: resnet20 (its pretrained weights; accuracy printed), preact_resnet18 "
                "and alexnet_bn at 224x224 (random weights)");
  const std::string found = default_int8_peer();
  cmd->add_option("--peer-script", a->peer_script,
                  "the int8 peer (default: bench/peers/py_int8_peer.py, installed or of the "
                  "source tree)")
      ->default_str(found.empty() ? "not found" : found);
  cmd->add_flag("!--no-peer-accuracy", a->peer_accuracy,
                "skip the peer's resnet20 test-set accuracy (a faster start)");
  cmd->add_option("--python", a->python, "Python with torch for the peer")->capture_default_str();
  cmd->callback([a] {
    rt::Model runtime = rt::Model::load(a->model_path);
    const int c = runtime.input_channels(), h = runtime.input_height(), w = runtime.input_width();
    // Peer settings are checked before any timing, each naming its option.
    std::unique_ptr<Int8Peer> peer;
    const int threads = train::set_compute_threads(a->threads);
    if (a->peer) {
      const PeerNet* net = nullptr;
      for (const PeerNet& n : kPeerNets)
        if (runtime.model_name() == n.name) net = &n;
      if (net == nullptr) {
        throw std::invalid_argument(
            "--peer: the int8 peer builds resnet20, preact_resnet18 and "
            "alexnet_bn, not " +
            runtime.model_name());
      }
      if (c != 3 || h != net->size || w != net->size) {
        throw std::invalid_argument(
            pactq::format("--peer: the int8 peer builds {} for 3x{}x{} images; {} takes {}x{}x{}",
                          net->name, net->size, net->size, a->model_path, c, h, w));
      }
      std::string script = a->peer_script.empty() ? default_int8_peer() : a->peer_script;
      if (script.empty()) {
        throw std::invalid_argument("--peer-script: " + shipped_file_search_note(kInt8Peer) +
                                    "; give its path");
      }
      if (!fs::is_regular_file(script)) {
        throw std::invalid_argument("--peer-script: " + script + " not found");
      }
      peer = std::make_unique<Int8Peer>(a->python, script, runtime.model_name(), threads,
                                        a->peer_accuracy);
    }
    runtime.set_threads(threads);
    // The same architecture in LibTorch at fp32 (weights do not change speed).
    train::TrainConfig fp;
    fp.model = runtime.model_name();
    fp.wbits = fp.abits = "fp";
    fp.act_quant = "relu";
    models::QuantModelPtr torch_model = train::build_model(fp, runtime.classes());
    torch_model->eval();
    at::NoGradGuard no_grad;
    const at::Tensor pixels = at::rand({a->batch, c, h, w});
    const float* px = pixels.data_ptr<float>();
    const at::Tensor one = pixels.slice(0, 0, 1).contiguous();
    Series rt1, th1, rtb, thb, pf1, pq1, pfb, pqb;
    for (int r = 0; r < a->rounds + 1; ++r) {  // round 0 warms up
      // settle(): no contender is timed while the last one's threads still spin.
      settle();
      const double a1 = median_seconds(a->latency_reps, [&] { runtime.run(px, 1); });
      settle();
      const double b1 = median_seconds(a->latency_reps, [&] { torch_model->forward(one); });
      settle();
      const double ab = median_seconds(a->batch_reps, [&] { runtime.run(px, a->batch); });
      settle();
      const double bb = median_seconds(a->batch_reps, [&] { torch_model->forward(pixels); });
      std::pair<double, double> p1{0, 0}, pb{0, 0};
      if (peer) {
        settle();
        p1 = peer->round(1, a->latency_reps);
        settle();
        pb = peer->round(a->batch, a->batch_reps);
      }
      if (r == 0) continue;
      rt1.s.push_back(a1);
      th1.s.push_back(b1);
      rtb.s.push_back(ab);
      thb.s.push_back(bb);
      pf1.s.push_back(p1.first);
      pq1.s.push_back(p1.second);
      pfb.s.push_back(pb.first);
      pqb.s.push_back(pb.second);
    }
    pactq::print("bench run: {} ({}), {} threads, runtime ISA {}\n", a->model_path,
                 runtime.model_name(), threads, runtime.isa());
    if (peer) {
      const nlohmann::json& i = peer->info();
      std::string acc;
      if (i.contains("int8_top1")) {
        acc = pactq::format("; test top-1 fp32 {:.2f}%, int8 {:.2f}%", i["fp32_top1"].get<double>(),
                            i["int8_top1"].get<double>());
      }
      pactq::print("  int8 peer: PyTorch {} FX static int8 ({}){}\n", i.value("torch", "?"),
                   i.value("engine", "?"), acc);
    }
    const int B = a->batch;
    pactq::print("  batch {:>3} throughput, median [range] of {} rounds:\n", B, a->rounds);
    pactq::print("    runtime        {}\n", throughput(rtb, B));
    pactq::print("    LibTorch fp32  {}   runtime/LibTorch = {:.2f}x\n", throughput(thb, B),
                 thb.median() / rtb.median());
    if (peer) {
      pactq::print("    PyTorch fp32   {}\n", throughput(pfb, B));
      pactq::print("    PyTorch int8   {}   runtime/int8 = {:.2f}x\n", throughput(pqb, B),
                   pqb.median() / rtb.median());
    }
    pactq::print("  batch   1 latency, median [range] of {} rounds:\n", a->rounds);
    pactq::print("    runtime        {}\n", latency(rt1));
    pactq::print("    LibTorch fp32  {}   runtime/LibTorch = {:.2f}x\n", latency(th1),
                 rt1.median() / th1.median());
    if (peer) {
      pactq::print("    PyTorch fp32   {}\n", latency(pf1));
      pactq::print("    PyTorch int8   {}   runtime/int8 = {:.2f}x\n", latency(pq1),
                   rt1.median() / pq1.median());
    }
    pactq::print("  file {} bytes; weights {} bytes\n", runtime.file_bytes(),
                 runtime.weight_bytes());
  });
}

}  // namespace pactq::cli
