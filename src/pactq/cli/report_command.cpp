// `pactq report RUN_DIR... -o report.html`: one self-contained HTML page
// (inline SVG, no scripts) with each run's settings, accuracy and per-layer
// alpha curves, and a comparison of the runs. Problems in a run's files are
// warnings on stderr (and in the page); a missing directory is an error.

#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "pactq/cli/commands.h"
#include "pactq/common/atomic_file.h"
#include "pactq/common/format.h"
#include "pactq/report/report.h"

namespace pactq::cli {

void add_report_command(CLI::App& app) {
  struct Options {
    std::vector<std::string> runs;
    std::string out = "report.html";
    std::string alpha_svg;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd =
      app.add_subcommand("report", "HTML report (curves, alphas, comparison) of training runs");
  cmd->add_option("runs", o->runs, "training run directories (config.json, metrics.jsonl)")
      ->required();
  cmd->add_option("-o,--out", o->out, "the HTML file to write")->capture_default_str();
  cmd->add_option("--alpha-svg", o->alpha_svg,
                  "also write the first run's per-layer alpha chart as a standalone SVG file");
  cmd->callback([o] {
    // The alpha chart is checked before anything is written, so a failing
    // --alpha-svg leaves no half-done output behind a "wrote" line.
    std::string svg;
    if (!o->alpha_svg.empty()) {
      svg = report::alpha_chart_svg(report::load_run(o->runs.front()));
      if (svg.empty()) {
        throw std::invalid_argument("--alpha-svg: " + o->runs.front() +
                                    " has no learned PACT alpha in its metrics (nothing written)");
      }
    }
    const std::vector<std::string> warnings = report::write_report(o->runs, o->out);
    for (const auto& w : warnings) std::fprintf(stderr, "pactq: warning: %s\n", w.c_str());
    pactq::print("wrote {} ({} run{})\n", o->out, o->runs.size(), o->runs.size() == 1 ? "" : "s");
    if (!svg.empty()) {
      const std::string text = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + svg;
      write_bytes_atomically(o->alpha_svg, text.data(), text.size());
      pactq::print("wrote {}\n", o->alpha_svg);
    }
  });
}

}  // namespace pactq::cli
