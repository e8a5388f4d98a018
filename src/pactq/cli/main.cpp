// The `pactq` command.
#include <CLI/CLI.hpp>

#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"pactq: PACT quantization-aware training and integer deployment"};
  app.require_subcommand(1);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
