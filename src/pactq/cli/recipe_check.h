// Recipes (--config FILE.toml) are read by CLI11, whose errors name neither
// the file nor the section ("INI was not able to parse train.epochz"). This
// checks a recipe first, so a mistake reads "<file>: unknown key 'epochz' in
// [train]" or "<file>: 'epochs' in [train] is "ten", expected an integer".
#pragma once
#include <CLI/CLI.hpp>

#include <string>

namespace pactq::cli {

// The FILE of `--config FILE` / `--config=FILE` anywhere in argv (the option
// lives on the top app and falls through), or "" when there is none.
std::string recipe_path(int argc, char** argv);

// Throws std::invalid_argument naming the file for an unreadable recipe, a
// key outside [train], an unknown key or a value of the wrong type.
void check_recipe(const std::string& path, const CLI::App& app, const CLI::App& train);

}  // namespace pactq::cli
