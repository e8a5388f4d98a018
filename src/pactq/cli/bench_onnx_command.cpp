// `pactq bench onnx`: pactq's integer runtime on a .pqm vs ONNX Runtime (CPU,
// from tools/ort) on the QCDQ .onnx of the same checkpoint, with the same
// thread count, batch-1 latency and batch throughput. ONNX Runtime computes
// the QCDQ graph in float after DequantizeLinear, so the rows show what the
// integer kernels buy. ORT runs in Node (tools/ort/bench_ort.js), in rounds
// interleaved with pactq's; medians of the rounds.

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "pactq/cli/commands.h"
#include "pactq/cli/shipped_files.h"
#include "pactq/cli/timing.h"
#include "pactq/common/format.h"
#include "pactq/runtime/model.h"

#ifdef PACTQ_WITH_ONNX
#include "pactq/export/onnx/onnx_export.h"
#endif

namespace pactq::cli {

#ifndef PACTQ_WITH_ONNX
void add_bench_onnx(CLI::App& bench) {
  bench.add_subcommand("onnx", "integer runtime vs ONNX Runtime (needs a build with ONNX export)")
      ->allow_extras()
      ->callback([] {
        throw std::invalid_argument(
            "bench onnx: this pactq was built without ONNX export (install libonnx-dev and "
            "configure with -DPACTQ_WITH_ONNX=ON)");
      });
}
#else
namespace {

namespace fs = std::filesystem;

// tools/ort (bench_ort.js and its node_modules), installed or in the source
// tree (cli/shipped_files.h); empty if not found.
std::string default_ort_dir() {
  const std::string script = find_shipped_file("tools/ort/bench_ort.js");
  return script.empty() ? script : fs::path(script).parent_path().string();
}

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs bench_ort.js once; its JSON line.
nlohmann::json run_ort(const std::string& node, const std::string& dir, const std::string& onnx,
                       const std::array<int, 3>& shape, int batch, int threads, int reps) {
  const std::string cmd =
      pactq::format("{} {} {} --shape {},{},{} --batch {} --threads {} --reps {} --warmup {} 2>&1",
                    quote(node), quote(dir + "/bench_ort.js"), quote(onnx), shape[0], shape[1],
                    shape[2], batch, threads, reps, std::max(2, reps / 10));
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
  if (!p) throw std::runtime_error("cannot run " + cmd);
  std::string out;
  std::array<char, 4096> buf{};
  while (fgets(buf.data(), buf.size(), p.get())) out += buf.data();
  const int rc = pclose(p.release());
  const auto line = out.find('{');
  if (rc != 0 || line == std::string::npos) {
    throw std::runtime_error("ONNX Runtime run failed (" + cmd + "): " + out);
  }
  return nlohmann::json::parse(out.substr(line));
}

std::string onnx_metadata(const onnx::ModelProto& m, const std::string& key) {
  for (const auto& p : m.metadata_props()) {
    if (p.key() == key) return p.value();
  }
  return {};
}

}  // namespace

void add_bench_onnx(CLI::App& bench) {
  struct Args {
    std::string pqm, onnx, node = "node", ort_dir;
    int threads = 0, batch = 64, rounds = 5, latency_reps = 50;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = bench.add_subcommand(
      "onnx",
      "integer runtime on a .pqm vs ONNX Runtime on the QCDQ .onnx of the same "
      "checkpoint: batch-1 latency, batch throughput, same thread count");
  cmd->add_option("pqm", a->pqm, "a .pqm file from pactq export")->required();
  cmd->add_option("onnx", a->onnx, "the QCDQ .onnx exported from the same checkpoint")->required();
  cmd->add_option("--threads", a->threads, "threads for both (0: all cores)");
  cmd->add_option("--batch-size", a->batch, "throughput batch")->capture_default_str();
  cmd->add_option("--rounds", a->rounds, "interleaved rounds (the median is reported)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--latency-reps", a->latency_reps, "batch-1 runs per round")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--node", a->node, "Node.js to run ONNX Runtime with")->capture_default_str();
  const std::string found = default_ort_dir();
  cmd->add_option("--ort-dir", a->ort_dir,
                  "folder with bench_ort.js and node_modules/onnxruntime-node (default: tools/ort, "
                  "installed or of the source tree; scripts/setup installs its node_modules)")
      ->default_str(found.empty() ? "not found" : found);
  cmd->callback([a] {
    if (a->batch < 1) throw std::invalid_argument("--batch-size: expected a positive integer");
    if (a->threads < 0) throw std::invalid_argument("--threads: expected 0 or more");
    std::string dir = a->ort_dir.empty() ? default_ort_dir() : a->ort_dir;
    if (dir.empty() || !fs::is_regular_file(fs::path(dir) / "bench_ort.js")) {
      throw std::invalid_argument("--ort-dir: " +
                                  (dir.empty() ? shipped_file_search_note("tools/ort/bench_ort.js")
                                               : dir + "/bench_ort.js not found") +
                                  "; give the folder of pactq's tools/ort");
    }
    if (!fs::is_directory(fs::path(dir) / "node_modules/onnxruntime-node")) {
      throw std::invalid_argument("--ort-dir: " + dir +
                                  " has no node_modules/onnxruntime-node; run scripts/setup");
    }
    if (!fs::is_regular_file(a->onnx)) throw std::invalid_argument(a->onnx + ": not found");
    const onnx::ModelProto m = export_::onnx_export::read_onnx_model(a->onnx);
    if (onnx_metadata(m, "pactq_format") != "qcdq") {
      throw std::invalid_argument(a->onnx +
                                  ": not a QCDQ file from pactq export (ONNX Runtime cannot run "
                                  "QONNX's custom operators)");
    }
    rt::Model runtime = rt::Model::load(a->pqm);
    const std::string src_onnx = onnx_metadata(m, "source"), src_pqm = runtime.metadata("source");
    if (!src_onnx.empty() && !src_pqm.empty() && src_onnx != src_pqm) {
      throw std::invalid_argument(a->onnx + ": exported from " + src_onnx + ", " + a->pqm +
                                  " from " + src_pqm + ": compare files of one checkpoint");
    }
    const int threads = a->threads > 0
                            ? a->threads
                            : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    runtime.set_threads(threads);
    const std::array<int, 3> shape{runtime.input_channels(), runtime.input_height(),
                                   runtime.input_width()};
    std::vector<float> px(static_cast<size_t>(a->batch) * shape[0] * shape[1] * shape[2]);
    uint32_t s = 12345;  // pixels in [0, 1]; the values do not change the work
    for (float& v : px) v = static_cast<float>((s = s * 1664525u + 1013904223u) >> 8) / 16777216.f;
    std::vector<double> rt1, rtb, ort1, ortb;
    std::string version;
    for (int r = 0; r < a->rounds + 1; ++r) {  // round 0 warms up
      const double l = median_seconds(a->latency_reps, [&] { runtime.run(px.data(), 1); });
      const double b = median_seconds(5, [&] { runtime.run(px.data(), a->batch); });
      const nlohmann::json o1 = run_ort(a->node, dir, a->onnx, shape, 1, threads, a->latency_reps);
      const nlohmann::json ob = run_ort(a->node, dir, a->onnx, shape, a->batch, threads, 5);
      version = o1.value("onnxruntime", "?");
      if (r == 0) continue;
      rt1.push_back(l);
      rtb.push_back(b);
      ort1.push_back(o1.at("median_ms").get<double>() / 1e3);
      ortb.push_back(ob.at("median_ms").get<double>() / 1e3);
    }
    const double l_rt = median(rt1), l_ort = median(ort1), b_rt = median(rtb), b_ort = median(ortb);
    pactq::print(
        "bench onnx: {} ({}), {} threads; pactq runtime ISA {}; ONNX Runtime {} (CPU, {})\n",
        runtime.model_name(), runtime.metadata("precision"), threads, runtime.isa(), version,
        a->onnx);
    pactq::print(
        "  batch {:>3} throughput: pactq/ORT = {:.2f}x  (pactq {:.0f} img/s, ONNX Runtime {:.0f} "
        "img/s)\n",
        a->batch, b_ort / b_rt, a->batch / b_rt, a->batch / b_ort);
    pactq::print(
        "  batch   1 latency:    pactq/ORT = {:.2f}x  (pactq {:.3f} ms, ONNX Runtime {:.3f} ms)\n",
        l_ort / l_rt, 1e3 * l_rt, 1e3 * l_ort);
    pactq::print(
        "  files: .pqm {} bytes, .onnx {} bytes (ORT timed around session.run() in Node, "
        "whose binding adds its call overhead to each run)\n",
        runtime.file_bytes(), fs::file_size(a->onnx));
  });
}

#endif  // PACTQ_WITH_ONNX

}  // namespace pactq::cli
