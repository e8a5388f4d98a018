// The pactq command line: recipes (configs/*.toml) parse, flags override them,
// misspelt keys are errors.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;

namespace {
const std::string kExe = std::string(PACTQ_BINARY_DIR) + "/pactq";
const std::string kCifar = std::string(PACTQ_SOURCE_DIR) + "/../shared/data/cifar-10-batches-bin";

int run(const std::string& args) {
  return std::system((kExe + " " + args + " >/dev/null 2>&1").c_str());
}

std::string temp_dir() {
  std::string pattern = (fs::temp_directory_path() / "pactq_cli_XXXXXX").string();
  return mkdtemp(pattern.data());
}
}  // namespace

TEST(Cli, RecipesParseAndFlagsOverrideThem) {
  if (!fs::exists(kCifar)) GTEST_SKIP() << "shared CIFAR-10 not present";
  const std::string out = temp_dir();
  for (const char* recipe :
       {"resnet20_cifar10_pact_w2a2", "resnet20_cifar10_fp", "resnet20_cifar10_dorefa_w4a4"}) {
    const std::string cfg = std::string(PACTQ_SOURCE_DIR) + "/configs/" + recipe + ".toml";
    ASSERT_EQ(run("train --config " + cfg + " --data-dir " + kCifar +
                  " --max-steps 0 --quiet --out " + out + "/" + recipe),
              0)
        << recipe;
    std::ifstream f(out + "/" + recipe + "/config.json");
    const auto j = nlohmann::json::parse(f);
    EXPECT_EQ(j.at("model"), "resnet20");
    EXPECT_EQ(j.at("epochs"), 200);
    EXPECT_EQ(j.at("schedule"), "multistep:60,120");
  }
  const std::string cfg =
      std::string(PACTQ_SOURCE_DIR) + "/configs/resnet20_cifar10_pact_w4a4.toml";
  ASSERT_EQ(run("train --config " + cfg + " --wbits 3 --data-dir " + kCifar +
                " --max-steps 0 --quiet --out " + out + "/override"),
            0);
  std::ifstream f(out + "/override/config.json");
  const auto j = nlohmann::json::parse(f);
  EXPECT_EQ(j.at("wbits"), "3");
  EXPECT_EQ(j.at("abits"), "4");
  fs::remove_all(out);
}

TEST(Cli, BadInputIsAnErrorWithNonZeroExit) {
  const std::string out = temp_dir();
  std::ofstream(out + "/bad.toml") << "[train]\nbogus = 1\n";
  EXPECT_NE(run("train --config " + out + "/bad.toml --max-steps 0 --out " + out + "/x"), 0);
  EXPECT_NE(
      run("train --model nosuchnet --dataset fashion-mnist --max-steps 0 --out " + out + "/y"), 0);
  EXPECT_NE(run("train --wbits 9 --max-steps 0 --out " + out + "/z"), 0);
  EXPECT_NE(run("eval " + out + "/missing.pt"), 0);
  fs::remove_all(out);
}

TEST(Cli, ExportRunInspectAndBenchRunSmoke) {
  if (!fs::exists("/usr/share/datasets/fashion-mnist"))
    GTEST_SKIP() << "dataset-fashion-mnist not installed";
  const std::string out = temp_dir();
  ASSERT_EQ(run("train --model lenet5 --dataset fashion-mnist --wbits 4 --abits 4 --max-steps 0 "
                "--quiet --out " +
                out),
            0);
  ASSERT_EQ(run("export " + out + "/last.pt -o " + out + "/m.pqm"), 0);
  EXPECT_EQ(run("inspect " + out + "/m.pqm"), 0);
  EXPECT_EQ(run("run " + out + "/m.pqm --dataset fashion-mnist --limit 256"), 0);
  // The benchmark harness in smoke mode: correctness of the harness, not speed.
  EXPECT_EQ(run("bench run " + out + "/m.pqm --batch-size 4 --rounds 1 --latency-reps 2"), 0);
  EXPECT_NE(run("bench run " + out + "/missing.pqm"), 0);
  fs::remove_all(out);
}
