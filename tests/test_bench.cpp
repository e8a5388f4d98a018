// Benchmark harness smoke tests: the harness measures what it claims (not
// speed); `pactq bench train --peer` passes both widths and names bad options.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include "pactq/train/step_benchmark.h"
#include "test_env.h"

using namespace pactq::train;

namespace {
TrainConfig variant(const std::string& bits, const std::string& act) {
  TrainConfig c;
  c.model = "resnet20";
  c.wbits = c.abits = bits;
  c.act_quant = act;
  return c;
}
}  // namespace

TEST(BenchTrain, TimesEveryVariantInterleaved) {
  StepBenchmarkOptions o;
  o.batch_size = 4;
  o.warmup = 1;
  o.steps = 3;
  const auto t = benchmark_training_steps({variant("fp", "relu"), variant("4", "pact")}, o);
  ASSERT_EQ(t.size(), 2u);
  for (const auto& s : t) {
    EXPECT_EQ(s.seconds.size(), 3u);
    EXPECT_GT(s.median(), 0.0);
  }
  EXPECT_EQ(t[1].label, "resnet20 W4/A4");
}

TEST(BenchTrain, StepMemoryOfPactStaysCloseToFloat) {
  const auto m = measure_step_memory({variant("fp", "relu"), variant("4", "pact")}, 16);
  ASSERT_EQ(m.size(), 2u);
  // Activations of a 16-image ResNet20 step are several MB.
  EXPECT_GT(m[0].peak_bytes, 4 << 20);
  // PACT keeps a 1-byte mask per activation instead of nothing extra: the
  // quantized step may cost a little more, never a second copy of everything.
  EXPECT_LT(static_cast<double>(m[1].peak_bytes) / m[0].peak_bytes, 1.5);
}

// ---------------------------------------------------- `pactq bench train --peer`

namespace {

namespace fs = std::filesystem;

struct Cli {
  int status = 0;
  std::string output;
};

// Runs `pactq <args>` in `cwd`, stdout and stderr together.
Cli pactq_cli(const std::string& args, const std::string& cwd = ".") {
  const std::string exe = std::string(PACTQ_BINARY_DIR) + "/pactq";
  std::string pattern = (fs::temp_directory_path() / "pactq_bench_cli_XXXXXX").string();
  const int fd = mkstemp(pattern.data());
  if (fd >= 0) close(fd);
  const std::string cmd = "cd '" + cwd + "' && '" + exe + "' " + args + " > '" + pattern + "' 2>&1";
  Cli r;
  r.status = std::system(cmd.c_str());
  std::ifstream f(pattern);
  r.output.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  fs::remove(pattern);
  return r;
}

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// A stand-in for Python: records each call's arguments (script first) and
// prints what the peer prints, in milliseconds instead of ~20 s.
std::string fake_python(const std::string& dir) {
  const std::string path = dir + "/fake_python.sh";
  std::ofstream f(path);
  f << "#!/bin/sh\necho \"$@\" >> '" << dir << "/calls.txt'\necho 'median_step_s=0.0100'\n";
  f.close();
  fs::permissions(path, fs::perms::owner_all);
  return path;
}

// One timed step of a 2-image batch: the harness, not the timing, is tested.
const std::string kQuick =
    "bench train --steps 1 --warmup 0 --batch-size 2 --no-memory --threads 1";

}  // namespace

// --abits fp used to die in std::stoi with the bare message "stoi", and the
// peer ran at A=W=abits whatever --wbits said: both widths now reach the peer.
TEST(BenchTrainPeer, BothWidthsReachThePeerAndFpIsExpressed) {
  std::string pattern = (fs::temp_directory_path() / "pactq_peer_XXXXXX").string();
  const std::string dir = mkdtemp(pattern.data());
  const std::string script = dir + "/peer.py";
  std::ofstream(script) << "# never run: the fake python only records its arguments\n";
  const Cli r = pactq_cli(kQuick + " --abits fp --wbits 3 --peer --python " + fake_python(dir) +
                          " --peer-script " + script);
  ASSERT_EQ(r.status, 0) << r.output;
  std::istringstream calls(read_text(dir + "/calls.txt"));
  std::string fp_call, q_call;
  std::getline(calls, fp_call);
  std::getline(calls, q_call);
  // BITS (activations; 32 = float) STEPS --wbits W --batch N --threads T
  EXPECT_EQ(fp_call, script + " 32 1 --wbits 32 --batch 2 --threads 1");
  EXPECT_EQ(q_call, script + " 32 1 --wbits 3 --batch 2 --threads 1");
  EXPECT_NE(r.output.find("pactq vs peer at W3/Afp"), std::string::npos) << r.output;

  fs::remove(dir + "/calls.txt");
  const Cli w = pactq_cli(kQuick + " --wbits 2 --abits 5 --peer --python " + fake_python(dir) +
                          " --peer-script " + script);
  ASSERT_EQ(w.status, 0) << w.output;
  EXPECT_NE(read_text(dir + "/calls.txt").find(script + " 5 1 --wbits 2 --batch 2"),
            std::string::npos);
  EXPECT_NE(w.output.find("W2/A5"), std::string::npos) << w.output;
  fs::remove_all(dir);
}

TEST(BenchTrainPeer, BadSettingsNameTheirOptionBeforeAnyTiming) {
  const Cli bits = pactq_cli(kQuick + " --abits fq --peer");
  EXPECT_NE(bits.status, 0);
  EXPECT_NE(bits.output.find("--abits"), std::string::npos) << bits.output;
  EXPECT_EQ(bits.output.find("stoi"), std::string::npos) << bits.output;
  EXPECT_EQ(bits.output.find("bench train:"), std::string::npos) << "timed before failing";

  const Cli missing = pactq_cli(kQuick + " --peer --peer-script /nonexistent/peer.py");
  EXPECT_NE(missing.status, 0);
  EXPECT_NE(missing.output.find("--peer-script"), std::string::npos) << missing.output;
  EXPECT_NE(missing.output.find("/nonexistent/peer.py"), std::string::npos) << missing.output;
  EXPECT_EQ(missing.output.find("bench train:"), std::string::npos) << "timed before failing";

  // Settings the peer cannot run are refused in one line naming the option.
  for (const std::string& bad : {std::string("--weight-quant sawb"), std::string("--first-last 8"),
                                 std::string("--model lenet5"), std::string("--wbits 1")}) {
    const Cli r = pactq_cli(kQuick + " --peer " + bad);
    EXPECT_NE(r.status, 0) << bad;
    EXPECT_NE(r.output.find("--peer: "), std::string::npos) << bad << ": " << r.output;
    EXPECT_NE(r.output.find(bad.substr(0, bad.find(' '))), std::string::npos) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  }
}

// The default script is found from any working directory (it was
// ../shared/peer relative to the cwd), and --help says where it looks.
TEST(BenchTrainPeer, DefaultScriptIsFoundFromAnyDirectory) {
  const fs::path expected =
      fs::weakly_canonical(fs::path(PACTQ_SOURCE_DIR) / "../shared/peer/py_resnet20_pact.py");
  if (!fs::exists(expected)) PACTQ_SKIP_MISSING(expected << " not present");
  const Cli help = pactq_cli("bench train --help", "/");
  EXPECT_NE(help.output.find(expected.string()), std::string::npos) << help.output;
  EXPECT_NE(help.output.find("PACTQ_DATA_DIR"), std::string::npos) << help.output;

  std::string pattern = (fs::temp_directory_path() / "pactq_peer_XXXXXX").string();
  const std::string dir = mkdtemp(pattern.data());
  const Cli r = pactq_cli(kQuick + " --peer --python " + fake_python(dir), "/");
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string calls = read_text(dir + "/calls.txt");
  EXPECT_EQ(calls.rfind(expected.string() + " 32 1 --wbits 32 --batch 2", 0), 0u) << calls;
  EXPECT_NE(calls.find("\n" + expected.string() + " 4 1 --wbits 4 --batch 2"), std::string::npos)
      << calls;
  fs::remove_all(dir);
}

// The real peer once (two ~3 s Python runs at batch 2): it accepts what we pass.
TEST(BenchTrainPeer, RealPeerRunsWithBothWidths) {
  if (!fs::exists("/usr/bin/python3")) PACTQ_SKIP_MISSING("no /usr/bin/python3");
  if (std::system("/usr/bin/python3 -c 'import torch' > /dev/null 2>&1") != 0) {
    PACTQ_SKIP_MISSING("python3 has no torch");
  }
  const Cli r = pactq_cli(kQuick + " --wbits 4 --abits fp --peer", "/");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("pactq vs peer at W4/Afp"), std::string::npos) << r.output;
}

// ---------------------------------------------------- `pactq bench run --peer`

namespace {

// .pqm files of resnet20 (a network the int8 peer builds) and lenet5 (one it
// does not), untrained: the harness, not accuracy, is tested.
class BenchRunPeer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string pattern = (fs::temp_directory_path() / "pactq_run_peer_XXXXXX").string();
    dir_ = mkdtemp(pattern.data());
    for (const std::string m : {"resnet20", "lenet5"}) {
      const Cli t = pactq_cli("train --model " + m + " --dataset synthetic --max-steps 0 --out " +
                              dir_ + "/" + m);
      ASSERT_EQ(t.status, 0) << t.output;
      const Cli e =
          pactq_cli("export " + dir_ + "/" + m + "/last.pt -o " + dir_ + "/" + m + ".pqm");
      ASSERT_EQ(e.status, 0) << e.output;
    }
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  // A stand-in for Python serving the peer's protocol: records its arguments
  // and each request, answers every `round B R` with fixed medians.
  static std::string fake_int8_python(const std::string& body) {
    const std::string path = dir_ + "/fake_int8_python.sh";
    std::ofstream(path) << "#!/bin/sh\necho \"$@\" > '" << dir_ << "/args.txt'\n" << body;
    fs::permissions(path, fs::perms::owner_all);
    return path;
  }
  static inline std::string dir_;
  const std::string quick =
      " --rounds 2 --latency-reps 2 --batch-reps 1 --batch-size 4 --threads 1";
};

}  // namespace

TEST_F(BenchRunPeer, RoundsAreInterleavedAndRatiosReported) {
  const std::string py = fake_int8_python(
      "echo '{\"model\": \"resnet20\", \"engine\": \"onednn\", \"torch\": \"fake\"}'\n"
      "while read cmd b r; do echo \"$cmd $b $r\" >> '" +
      dir_ +
      "/rounds.txt'\n"
      "echo \"{\\\"batch\\\": $b, \\\"fp32_s\\\": 0.04, \\\"int8_s\\\": 0.01}\"; done\n");
  fs::remove(dir_ + "/rounds.txt");
  const Cli r = pactq_cli("bench run " + dir_ + "/resnet20.pqm" + quick + " --peer --python " + py +
                          " --peer-script " + dir_ + "/resnet20.pqm");
  ASSERT_EQ(r.status, 0) << r.output;
  // The peer is started once, for the file's network, at our thread count.
  EXPECT_EQ(read_text(dir_ + "/args.txt"),
            dir_ + "/resnet20.pqm --model resnet20 --threads 1 --serve\n");
  // One latency and one batch round per timed round plus the warm-up round.
  EXPECT_EQ(read_text(dir_ + "/rounds.txt"),
            "round 1 2\nround 4 1\nround 1 2\nround 4 1\nround 1 2\nround 4 1\n");
  EXPECT_NE(r.output.find("PyTorch int8       400 img/s"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("runtime/int8 = "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("PyTorch int8    10.000 ms"), std::string::npos) << r.output;
}

TEST_F(BenchRunPeer, RefusalsAndPeerFailuresAreOneLineNamingThePeer) {
  const Cli lenet = pactq_cli("bench run " + dir_ + "/lenet5.pqm --peer" + quick);
  EXPECT_NE(lenet.status, 0);
  EXPECT_NE(lenet.output.find("--peer: the int8 peer builds resnet20"), std::string::npos)
      << lenet.output;
  EXPECT_NE(lenet.output.find("lenet5"), std::string::npos) << lenet.output;
  EXPECT_EQ(std::count(lenet.output.begin(), lenet.output.end(), '\n'), 1) << lenet.output;

  const Cli missing = pactq_cli("bench run " + dir_ + "/resnet20.pqm --peer --peer-script " + dir_ +
                                "/none.py" + quick);
  EXPECT_NE(missing.status, 0);
  EXPECT_NE(missing.output.find("--peer-script: " + dir_ + "/none.py not found"), std::string::npos)
      << missing.output;

  const std::string garbage = fake_int8_python("echo 'Traceback: no torch here'\n");
  const Cli g = pactq_cli("bench run " + dir_ + "/resnet20.pqm --peer --python " + garbage +
                          " --peer-script " + dir_ + "/resnet20.pqm" + quick);
  EXPECT_NE(g.status, 0);
  EXPECT_NE(g.output.find("--peer: expected a JSON line from the peer, got: Traceback"),
            std::string::npos)
      << g.output;

  const std::string dies = fake_int8_python("echo 'ImportError: torch' >&2\nexit 3\n");
  const Cli d = pactq_cli("bench run " + dir_ + "/resnet20.pqm --peer --python " + dies +
                          " --peer-script " + dir_ + "/resnet20.pqm" + quick);
  EXPECT_NE(d.status, 0);
  EXPECT_NE(d.output.find("it ended before answering (exit status 3); its stderr: ImportError"),
            std::string::npos)
      << d.output;
  EXPECT_EQ(d.output.find("bench run:"), std::string::npos) << "timed before failing";
}

// The real int8 peer once (~10 s: torch start-up, FX quantization): it
// answers our protocol and its numbers reach the table.
TEST_F(BenchRunPeer, RealInt8PeerRuns) {
  if (!fs::exists("/usr/bin/python3")) PACTQ_SKIP_MISSING("no /usr/bin/python3");
  if (std::system("/usr/bin/python3 -c 'import torch' > /dev/null 2>&1") != 0) {
    PACTQ_SKIP_MISSING("python3 has no torch");
  }
  const Cli r =
      pactq_cli("bench run " + dir_ + "/resnet20.pqm --peer --no-peer-accuracy" + quick, "/");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("int8 peer: PyTorch"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("runtime/int8 = "), std::string::npos) << r.output;
}

// The ImageNet-size rows in smoke mode: random-weight PreAct-ResNet18 and
// AlexNet-BN at 224x224 export, run and meet the real int8 peer (~40 s).
// `pactq bench profile`: one row per node (22 in resnet20), shares that add up
// to the whole, GOPS on the conv rows only, and totals by op.
TEST_F(BenchRunPeer, ProfileListsEveryNodeWithSharesAndGops) {
  const Cli r = pactq_cli("bench profile " + dir_ + "/resnet20.pqm --reps 3 --threads 1");
  ASSERT_EQ(r.status, 0) << r.output;
  std::istringstream lines(r.output);
  std::string line;
  int rows = 0, gops_rows = 0;
  double share = 0;
  while (std::getline(lines, line)) {
    std::istringstream f(line);
    int index;
    std::string node, op;
    if (!(f >> index >> node >> op)) continue;
    EXPECT_EQ(index, rows) << line;
    ++rows;
    const size_t pct = line.find('%');
    ASSERT_NE(pct, std::string::npos) << line;
    const size_t start = line.find_last_of(' ', pct);
    share += std::stod(line.substr(start + 1, pct - start - 1));
    const bool has_gops = line.find_first_not_of(' ', pct + 1) != std::string::npos;
    EXPECT_EQ(has_gops, op == "conv2d" || op == "linear") << line;
    gops_rows += has_gops;
  }
  EXPECT_EQ(rows, 22) << r.output;
  EXPECT_EQ(gops_rows, 20) << r.output;  // 19 convs and the classifier
  EXPECT_NEAR(share, 100.0, 0.5) << r.output;
  EXPECT_NE(r.output.find("by op:  conv2d int"), std::string::npos) << r.output;

  const Cli bad = pactq_cli("bench profile " + dir_ + "/missing.pqm");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.output.find("missing.pqm: cannot open file"), std::string::npos) << bad.output;
}

TEST_F(BenchRunPeer, ImageNetSizeNetworksRunAgainstTheRealPeer) {
  if (!fs::exists("/usr/bin/python3")) PACTQ_SKIP_MISSING("no /usr/bin/python3");
  if (std::system("/usr/bin/python3 -c 'import torch' > /dev/null 2>&1") != 0) {
    PACTQ_SKIP_MISSING("python3 has no torch");
  }
  for (const std::string m : {"preact_resnet18", "alexnet_bn"}) {
    const Cli t =
        pactq_cli("train --model " + m +
                  " --dataset synthetic --max-steps 0 --wbits 4 --abits 4 --out " + dir_ + "/" + m);
    ASSERT_EQ(t.status, 0) << t.output;
    const Cli e = pactq_cli("export " + dir_ + "/" + m + "/last.pt -o " + dir_ + "/" + m + ".pqm");
    ASSERT_EQ(e.status, 0) << e.output;
    const Cli r =
        pactq_cli("bench run " + dir_ + "/" + m +
                  ".pqm --peer --rounds 1 --latency-reps 1 --batch-reps 1 --batch-size 2");
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("(" + m + ")"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("runtime/int8 = "), std::string::npos) << r.output;
  }
}
