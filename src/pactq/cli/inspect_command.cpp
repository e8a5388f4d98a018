// `pactq inspect`: what a .pqm file holds (every node with op, shapes, bits,
// scales, alpha, bytes) and its size against the fp32 weights.

#include <memory>
#include <string>

#include "pactq/cli/commands.h"
#include "pactq/common/format.h"
#include "pactq/runtime/inspect.h"
#include "pactq/runtime/model.h"

namespace pactq::cli {

void add_inspect_command(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("inspect", "describe a .pqm model file");
  cmd->add_option("model", *path, "a .pqm file written by pactq export")->required();
  cmd->callback([path] {
    const rt::Model m = rt::Model::load(*path);
    pactq::print("{}\n", rt::describe(m));
    const std::string precision = m.metadata("precision");
    if (!precision.empty()) pactq::print("precision: {}\n", precision);
    const std::string source = m.metadata("source");
    if (!source.empty()) pactq::print("source: {}\n", source);
    pactq::print("file: {} bytes (weights and scales {} bytes); activations {} bytes per image\n",
                 m.file_bytes(), m.weight_bytes(), m.activation_bytes_per_image());
    const std::string fp32 = m.metadata("fp32_weight_bytes");
    if (!fp32.empty()) {
      const double f = std::stod(fp32);
      pactq::print("fp32 weights: {} bytes; the file is 1/{:.2f} of that ({:.1f}%)\n", fp32,
                   f / static_cast<double>(m.file_bytes()),
                   100.0 * static_cast<double>(m.file_bytes()) / f);
    }
  });
}

}  // namespace pactq::cli
