// `pactq models`: the zoo with parameter counts.
#include <fmt/format.h>

#include "pactq/cli/commands.h"
#include "pactq/models/registry.h"

namespace pactq::cli {

void add_models_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("models", "list the model zoo");
  cmd->callback([] {
    fmt::print("{:<18} {:>12} {:>7} {:>12}  {}\n", "model", "parameters", "alphas", "input",
               "description");
    for (const std::string& name : models::model_names()) {
      const models::ModelInfo info = models::model_info(name);
      models::QuantModelPtr model = models::create_model(name, {});
      const models::ParameterCount count = models::count_parameters(*model);
      const models::InputShape in = model->input_shape();
      fmt::print("{:<18} {:>12} {:>7} {:>12}  {}\n", name, count.weights, count.alphas,
                 fmt::format("{}x{}x{}", in.channels, in.height, in.width), info.description);
    }
  });
}

}  // namespace pactq::cli
