// Every recipe in configs/ loads and takes one optimiser step, on synthetic
// images of its model's input shape (the ImageNet and SVHN data sets are not
// on a CI machine; CIFAR-10 recipes would run on theirs, but one path for all
// keeps the check uniform and fast).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "pactq/train/checkpoint.h"

namespace fs = std::filesystem;

namespace {
const std::string kExe = std::string(PACTQ_BINARY_DIR) + "/pactq";
const std::string kSource = PACTQ_SOURCE_DIR;

std::string temp_dir() {
  std::string pattern = (fs::temp_directory_path() / "pactq_recipes_XXXXXX").string();
  return mkdtemp(pattern.data());
}
}  // namespace

TEST(Recipes, EveryRecipeLoadsAndTakesAStepOnSyntheticData) {
  const std::string out = temp_dir();
  int recipes = 0;
  for (const auto& entry : fs::directory_iterator(kSource + "/configs")) {
    if (entry.path().extension() != ".toml") continue;
    const std::string name = entry.path().stem().string();
    const std::string dir = out + "/" + name;
    // From the source tree: recipes name ../shared/... relative to it.
    const std::string command = "cd " + kSource + " && " + kExe + " train --config " +
                                entry.path().string() +
                                " --dataset synthetic --batch-size 2 --max-steps 1 --workers 0 "
                                "--threads 2 --quiet --out " +
                                dir + " > " + dir + ".log 2>&1";
    const int rc = std::system(command.c_str());
    std::ifstream log_file(dir + ".log");
    const std::string log((std::istreambuf_iterator<char>(log_file)), {});
    ASSERT_EQ(rc, 0) << name << ": " << log;
    ++recipes;
    const auto header = pactq::train::read_checkpoint_header(dir + "/last.pt");
    EXPECT_EQ(header.state.global_step, 1) << name;
    const auto& c = header.config;
    // The recipe's own settings survived, not the defaults.
    std::ifstream recipe(entry.path());
    const std::string text((std::istreambuf_iterator<char>(recipe)), {});
    EXPECT_NE(text.find("\"" + c.model + "\""), std::string::npos) << name;
    EXPECT_NE(text.find(std::to_string(c.epochs)), std::string::npos) << name;
    // alpha's decay is the recipe's weight decay unless the recipe says otherwise
    // (the paper's lambda_alpha).
    if (text.find("alpha-decay") == std::string::npos) {
      EXPECT_DOUBLE_EQ(c.resolved_alpha_decay(), c.weight_decay) << name;
    }
  }
  EXPECT_GE(recipes, 11);
  fs::remove_all(out);
}
