// `pactq models`: the zoo with parameter counts, then the trained models that
// ship with pactq (trained/manifest.json) with their deployed accuracy.

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "pactq/cli/commands.h"
#include "pactq/cli/shipped_files.h"
#include "pactq/common/format.h"
#include "pactq/models/registry.h"

namespace pactq::cli {

namespace {

constexpr const char* kManifest = "trained/manifest.json";

void print_trained_models() {
  const std::string path = find_shipped_file(kManifest);
  if (path.empty()) {
    pactq::print("\ntrained models: none ({})\n", shipped_file_search_note(kManifest));
    return;
  }
  // Every field is read before anything is printed, so a manifest with a
  // missing or mistyped field is one error naming the file.
  std::vector<std::string> rows;
  try {
    std::ifstream in(path);
    const nlohmann::json manifest = nlohmann::json::parse(in);
    for (const auto& [name, e] : manifest.at("models").items()) {
      rows.push_back(
          pactq::format("{:<28} {:<10} {:>5} {:>7.2f}% {:>9.2f}% {:>6}  {}\n", name,
                        e.at("model").get<std::string>(),
                        e.at("wbits").get<std::string>() + "/" + e.at("abits").get<std::string>(),
                        e.at("deployed_top1").get<double>(), e.at("fake_quant_top1").get<double>(),
                        e.at("epochs").get<int>(), e.value("label", std::string())));
    }
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + ": not a valid manifest (" + e.what() + ")");
  }
  const std::string folder = std::filesystem::path(path).parent_path().string();
  pactq::print(
      "\ntrained models in {} (top-1 on the full test set; `pactq run {}/NAME/model.pqm`)\n",
      folder, folder);
  pactq::print("{:<28} {:<10} {:>5} {:>8} {:>10} {:>6}  {}\n", "name", "model", "W/A", "deployed",
               "fake-quant", "epochs", "recipe");
  for (const std::string& row : rows) pactq::print("{}", row);
}

}  // namespace

void add_models_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("models", "list the model zoo and the trained models");
  cmd->callback([] {
    pactq::print("{:<18} {:>12} {:>7} {:>12}  {}\n", "model", "parameters", "alphas", "input",
                 "description");
    for (const std::string& name : models::model_names()) {
      const models::ModelInfo info = models::model_info(name);
      models::QuantModelPtr model = models::create_model(name, {});
      const models::ParameterCount count = models::count_parameters(*model);
      const models::InputShape in = model->input_shape();
      pactq::print("{:<18} {:>12} {:>7} {:>12}  {}\n", name, count.weights, count.alphas,
                   pactq::format("{}x{}x{}", in.channels, in.height, in.width), info.description);
    }
    print_trained_models();
  });
}

}  // namespace pactq::cli
