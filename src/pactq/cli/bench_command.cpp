// `pactq bench`: end-to-end benchmarks. `bench train` times float vs
// quantized training steps interleaved in one process (and the Python peer
// with --peer).
#include <fmt/format.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <memory>
#include <regex>

#include "pactq/cli/commands.h"
#include "pactq/runtime/model.h"
#include "pactq/train/compute_threads.h"
#include "pactq/train/model_setup.h"
#include "pactq/train/step_benchmark.h"

namespace pactq::cli {
namespace {

// Runs the Python peer script and returns its median step seconds.
double run_peer(const std::string& python, const std::string& script, int bits, int steps) {
  const std::string command = fmt::format("{} {} {} {} 2>&1", python, script, bits, steps);
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) throw std::runtime_error("--peer: cannot run " + command);
  std::string output;
  std::array<char, 4096> buf{};
  while (fgets(buf.data(), buf.size(), pipe.get()) != nullptr) output += buf.data();
  std::smatch m;
  static const std::regex re("median_step_s=([0-9.]+)");
  if (!std::regex_search(output, m, re)) {
    throw std::runtime_error("--peer: " + script +
                             " printed no median_step_s (output: " + output.substr(0, 300) + ")");
  }
  return std::stod(m[1]);
}

void add_bench_train(CLI::App& bench) {
  struct Args {
    train::TrainConfig config;
    train::StepBenchmarkOptions options;
    bool peer = false;
    std::string peer_script = "../shared/peer/py_resnet20_pact.py";
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
  cmd->add_flag("--peer", a->peer, "also run the Python eager peer at the same bits");
  cmd->add_option("--peer-script", a->peer_script, "the peer script")->capture_default_str();
  cmd->add_option("--python", a->python, "Python with torch for the peer")->capture_default_str();
  cmd->add_flag("!--no-memory", a->memory, "skip the peak-memory measurement");
  cmd->callback([a] {
    train::TrainConfig fp = a->config;
    fp.wbits = fp.abits = "fp";
    fp.act_quant = "relu";
    const train::TrainConfig& q = a->config;
    const auto t = train::benchmark_training_steps({fp, q}, a->options);
    const double ratio = t[1].median() / t[0].median();
    fmt::print("bench train: {} batch {}, {} threads, {} timed steps each (interleaved)\n", q.model,
               a->options.batch_size, at::get_num_threads(), a->options.steps);
    fmt::print("  ratio W{}/A{} / float: {:.3f}x\n", q.wbits, q.abits, ratio);
    for (const auto& s : t) {
      fmt::print("  {:<22} median {:7.1f} ms  ({:.0f} img/s)\n", s.label, 1e3 * s.median(),
                 a->options.batch_size / s.median());
    }
    if (a->memory) {
      const auto m = train::measure_step_memory({fp, q}, a->options.batch_size);
      fmt::print("  peak step memory: float {:.1f} MB, W{}/A{} {:.1f} MB ({:.2f}x)\n",
                 m[0].peak_mb(), q.wbits, q.abits, m[1].peak_mb(),
                 static_cast<double>(m[1].peak_bytes) / m[0].peak_bytes);
    }
    if (a->peer) {
      const int bits = std::stoi(q.abits);
      const double peer_fp = run_peer(a->python, a->peer_script, 32, a->options.steps);
      const double peer_q = run_peer(a->python, a->peer_script, bits, a->options.steps);
      fmt::print("  peer (Python eager): float {:.1f} ms, W{}/A{} {:.1f} ms ({:.3f}x)\n",
                 1e3 * peer_fp, bits, bits, 1e3 * peer_q, peer_q / peer_fp);
      fmt::print("  pactq vs peer at W{}/A{}: {:.2f}x faster (float: {:.2f}x)\n", bits, bits,
                 peer_q / t[1].median(), peer_fp / t[0].median());
    }
  });
}

// Median seconds of `fn` over `reps` calls.
template <typename Fn>
double median_seconds(int reps, Fn&& fn) {
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

void add_bench_run(CLI::App& bench) {
  struct Args {
    std::string model_path;
    int threads = 0;
    int batch = 64;
    int rounds = 5;
    int latency_reps = 50;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = bench.add_subcommand("run",
                                       "integer runtime vs LibTorch fp32 eval of the same network: "
                                       "batch-1 latency, batch throughput");
  cmd->add_option("model", a->model_path, "a .pqm file from pactq export")->required();
  cmd->add_option("--threads", a->threads, "threads for both (0: all cores)");
  cmd->add_option("--batch-size", a->batch, "throughput batch")->capture_default_str();
  cmd->add_option("--rounds", a->rounds, "interleaved rounds (the median is reported)")
      ->capture_default_str();
  cmd->add_option("--latency-reps", a->latency_reps, "batch-1 runs per round")
      ->capture_default_str();
  cmd->callback([a] {
    const int threads = train::set_compute_threads(a->threads);
    rt::Model runtime = rt::Model::load(a->model_path);
    runtime.set_threads(threads);
    // The same architecture in LibTorch at fp32 (weights do not change speed).
    train::TrainConfig fp;
    fp.model = runtime.model_name();
    fp.wbits = fp.abits = "fp";
    fp.act_quant = "relu";
    models::QuantModelPtr torch_model = train::build_model(fp, runtime.classes());
    torch_model->eval();
    at::NoGradGuard no_grad;
    const int c = runtime.input_channels(), h = runtime.input_height(), w = runtime.input_width();
    const at::Tensor pixels = at::rand({a->batch, c, h, w});
    const float* px = pixels.data_ptr<float>();
    const at::Tensor one = pixels.slice(0, 0, 1).contiguous();
    std::vector<double> rt1, th1, rtb, thb;
    for (int r = 0; r < a->rounds + 1; ++r) {  // round 0 warms up
      const double a1 = median_seconds(a->latency_reps, [&] { runtime.run(px, 1); });
      const double b1 = median_seconds(a->latency_reps, [&] { torch_model->forward(one); });
      const double ab = median_seconds(3, [&] { runtime.run(px, a->batch); });
      const double bb = median_seconds(3, [&] { torch_model->forward(pixels); });
      if (r == 0) continue;
      rt1.push_back(a1);
      th1.push_back(b1);
      rtb.push_back(ab);
      thb.push_back(bb);
    }
    auto med = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      return v[v.size() / 2];
    };
    const double l_rt = med(rt1), l_th = med(th1), b_rt = med(rtb), b_th = med(thb);
    fmt::print("bench run: {} ({}), {} threads, runtime ISA {}\n", a->model_path,
               runtime.model_name(), threads, runtime.isa());
    fmt::print(
        "  batch {:>3} throughput: runtime/LibTorch = {:.2f}x  (runtime {:.0f} img/s, LibTorch "
        "fp32 {:.0f} img/s)\n",
        a->batch, b_th / b_rt, a->batch / b_rt, a->batch / b_th);
    fmt::print(
        "  batch   1 latency:    runtime/LibTorch = {:.2f}x  (runtime {:.3f} ms, LibTorch fp32 "
        "{:.3f} ms)\n",
        l_rt / l_th, 1e3 * l_rt, 1e3 * l_th);
    fmt::print("  file {} bytes; weights {} bytes\n", runtime.file_bytes(), runtime.weight_bytes());
  });
}

}  // namespace

void add_bench_command(CLI::App& app) {
  CLI::App* bench = app.add_subcommand("bench", "benchmarks (ratios measured in one process)");
  bench->require_subcommand(1);
  add_bench_train(*bench);
  add_bench_run(*bench);
}

}  // namespace pactq::cli
