// `pactq bench profile`: where the integer runtime's time goes, node by node
// (medians over passes, share of the total, GOPS of each conv and linear), and
// the totals by kind of op, so a slow layer or an unvectorised op shows at once.

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "pactq/cli/commands.h"
#include "pactq/common/format.h"
#include "pactq/runtime/model.h"
#include "pactq/train/compute_threads.h"

namespace pactq::cli {

void add_bench_profile(CLI::App& bench) {
  struct Args {
    std::string model_path;
    int threads = 0;
    int batch = 1;
    int reps = 20;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = bench.add_subcommand(
      "profile",
      "time of each node of the integer runtime (median over passes, share, GOPS) and the "
      "totals by op");
  cmd->add_option("model", a->model_path, "a .pqm file from pactq export")->required();
  cmd->add_option("--threads", a->threads, "threads (0: all cores)");
  cmd->add_option("--batch-size", a->batch, "images per pass")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--reps", a->reps, "timed passes (the median per node is reported)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->callback([a] {
    rt::Model model = rt::Model::load(a->model_path);
    const int threads = train::set_compute_threads(a->threads);
    model.set_threads(threads);
    const size_t per_image =
        static_cast<size_t>(model.input_channels()) * model.input_height() * model.input_width();
    std::vector<float> pixels(per_image * a->batch);
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(0.f, 1.f);
    for (float& p : pixels) p = u(rng);
    const std::vector<rt::NodeProfile> prof = model.profile(pixels.data(), a->batch, a->reps);

    double total = 0;
    for (const rt::NodeProfile& p : prof) total += p.seconds;
    pactq::print(
        "bench profile: {} ({}), batch {}, {} threads, runtime ISA {}, median of {} passes\n",
        a->model_path, model.model_name(), a->batch, threads, model.isa(), a->reps);
    pactq::print("  {:>3} {:<28} {:<9} {:<5} {:>16} {:>9} {:>6} {:>7}\n", "#", "node", "op", "path",
                 "output CxHxW", "ms", "share", "GOPS");
    std::map<std::string, double> by_kind;
    for (size_t i = 0; i < prof.size(); ++i) {
      const rt::NodeProfile& p = prof[i];
      const std::string kind = p.path.empty() ? p.op : p.op + " " + p.path;
      by_kind[kind] += p.seconds;
      const std::string gops = p.ops > 0 ? pactq::format("{:7.1f}", p.ops / p.seconds * 1e-9) : "";
      pactq::print("  {:>3} {:<28} {:<9} {:<5} {:>16} {:>9.3f} {:>5.1f}% {:>7}\n", i, p.node, p.op,
                   p.path, pactq::format("{}x{}x{}", p.channels, p.height, p.width),
                   1e3 * p.seconds, 100 * p.seconds / total, gops);
    }
    pactq::print("  total {:.3f} ms per pass ({:.1f} images/s)\n", 1e3 * total, a->batch / total);
    std::vector<std::pair<double, std::string>> kinds;
    for (const auto& [k, s] : by_kind) kinds.push_back({s, k});
    std::sort(kinds.rbegin(), kinds.rend());
    pactq::print("  by op:");
    for (const auto& [s, k] : kinds) pactq::print("  {} {:.1f}%", k, 100 * s / total);
    pactq::print("\n");
  });
}

}  // namespace pactq::cli
