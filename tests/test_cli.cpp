// The pactq command line: recipes (configs/*.toml) parse, flags override them,
// misspelt keys are errors.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "test_env.h"

namespace fs = std::filesystem;

namespace {
const std::string kExe = std::string(PACTQ_BINARY_DIR) + "/pactq";
using pactq::test::kCifar;

int run(const std::string& args) {
  return std::system((kExe + " " + args + " >/dev/null 2>&1").c_str());
}

// Runs pactq, returns its exit status and stdout + stderr in *out.
int run_capture(const std::string& args, std::string* out) {
  const std::string file = (fs::temp_directory_path() / "pactq_cli_out.txt").string();
  const int rc = std::system((kExe + " " + args + " >" + file + " 2>&1").c_str());
  std::ifstream f(file);
  *out = std::string(std::istreambuf_iterator<char>(f), {});
  return rc;
}

std::string temp_dir() {
  std::string pattern = (fs::temp_directory_path() / "pactq_cli_XXXXXX").string();
  return mkdtemp(pattern.data());
}
}  // namespace

TEST(Cli, RecipesParseAndFlagsOverrideThem) {
  if (!fs::exists(kCifar)) PACTQ_SKIP_MISSING("shared CIFAR-10 not present");
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
    PACTQ_SKIP_MISSING("dataset-fashion-mnist not installed");
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

// The first command a user runs prints the number that counts: the exported
// integer model's accuracy through the runtime, beside the training figure.
TEST(Cli, QuickstartPrintsTheDeployedAccuracy) {
  if (!fs::exists(pactq::test::kFashion)) PACTQ_SKIP_MISSING("dataset-fashion-mnist not installed");
  const std::string out = temp_dir();
  std::string text;
  ASSERT_EQ(run_capture("quickstart --epochs 1 --limit-train 2048 --quiet --out " + out, &text), 0)
      << text;
  EXPECT_TRUE(fs::exists(out + "/w4a4/model.pqm")) << text;
  // The W4/A4 row: training top-1, then the deployed top-1 as a percentage.
  const auto row = text.find("PACT W4/A4 (fp first/last)", text.find("deployed"));
  ASSERT_NE(row, std::string::npos) << text;
  const std::string line = text.substr(row, text.find('\n', row) - row);
  int percents = 0;
  for (char ch : line) percents += ch == '%';
  EXPECT_EQ(percents, 2) << line;
  EXPECT_NE(text.find("W4/A4 deployed vs float"), std::string::npos) << text;
  // ... and the run's metrics carry it per epoch (the report's deployed column).
  std::ifstream m(out + "/w4a4/metrics.jsonl");
  std::string last, l;
  while (std::getline(m, l)) last = l;
  EXPECT_TRUE(nlohmann::json::parse(last).contains("test_top1_deployed")) << last;
  fs::remove_all(out);
}

// `eval --config RECIPE` evaluates the recipe's network (it used to ignore the
// recipe and evaluate a float network); the command line still wins, and a
// checkpoint with a recipe is refused (the checkpoint defines the network).
TEST(Cli, EvalTakesTheRecipesNetwork) {
  if (!fs::exists(kCifar) || !fs::exists(pactq::test::kPretrained))
    PACTQ_SKIP_MISSING("shared CIFAR-10 or the pretrained ResNet20 not present");
  const std::string cfg =
      std::string(PACTQ_SOURCE_DIR) + "/configs/resnet20_cifar10_pact_w2a2.toml";
  const std::string common = " --data-dir " + kCifar + " --init-from " + pactq::test::kPretrained +
                             " --limit-test 64 --quiet";
  std::string text;
  ASSERT_EQ(run_capture("eval --config " + cfg + common, &text), 0) << text;
  EXPECT_NE(text.find("W2/A2 dorefa/pact"), std::string::npos) << text;
  ASSERT_EQ(run_capture("eval --config " + cfg + " --abits 4" + common, &text), 0) << text;
  EXPECT_NE(text.find("W2/A4 dorefa/pact"), std::string::npos) << text;
  const std::string out = temp_dir();
  ASSERT_EQ(run("train --config " + cfg + " --data-dir " + kCifar +
                " --max-steps 0 --quiet --out " + out),
            0);
  EXPECT_NE(run_capture("eval " + out + "/last.pt --config " + cfg, &text), 0);
  EXPECT_NE(text.find("defines the network"), std::string::npos) << text;
  fs::remove_all(out);
}
