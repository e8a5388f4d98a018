// Bad input, end to end (docs/reliability.md): every bad input to the `pactq`
// command gives one "pactq: error: ..." line naming the file or option, a
// non-zero exit and no LibTorch backtrace; an interrupted or failed write keeps
// the previous file. Each test is one row of the table in docs/reliability.md
// and drives the binary as a user would.
#include <grp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <thread>

#include "pactq/common/atomic_file.h"
#include "pactq/data/idx.h"
#include "pactq/runtime/model.h"
#include "pactq/train/checkpoint.h"
#include "pactq/train/model_setup.h"
#include "test_env.h"

namespace fs = std::filesystem;
using pactq::train::read_checkpoint_header;

namespace {

const std::string kExe = std::string(PACTQ_BINARY_DIR) + "/pactq";
using pactq::test::kCifar;
using pactq::test::kFashion;

struct Result {
  int code = 0;  // exit status; -N when killed by signal N
  std::string out, err;
};

struct SpawnOptions {
  rlim_t max_file_bytes = RLIM_INFINITY;  // RLIMIT_FSIZE: a "full disk" for this process only
  bool as_nobody = false;                 // drop root, so file permissions apply
};

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

void truncate_copy(const std::string& from, const std::string& to, size_t bytes) {
  write_text(to, read_text(from).substr(0, bytes));
}

// The pactq binary as a child process, stdout and stderr into files.
class Child {
 public:
  Child(const std::vector<std::string>& args, const SpawnOptions& o = {}) {
    static int counter = 0;
    const std::string base = (fs::temp_directory_path() / "pactq_rel_").string() +
                             std::to_string(::getpid()) + "_" + std::to_string(counter++);
    out_path_ = base + ".out";
    err_path_ = base + ".err";
    std::vector<std::string> all = {kExe};
    all.insert(all.end(), args.begin(), args.end());
    std::fflush(nullptr);  // or the child's freopen flushes our buffered output again
    pid_ = ::fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (auto& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      if (!std::freopen(out_path_.c_str(), "w", stdout) ||
          !std::freopen(err_path_.c_str(), "w", stderr))
        ::_exit(126);
      ::signal(SIGINT, SIG_DFL);
      if (o.max_file_bytes != RLIM_INFINITY) {
        const rlimit lim{o.max_file_bytes, o.max_file_bytes};
        ::setrlimit(RLIMIT_FSIZE, &lim);
      }
      if (o.as_nobody && ::geteuid() == 0) {
        if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0)
          ::_exit(126);
      }
      ::execv(kExe.c_str(), argv.data());
      ::_exit(127);
    }
  }
  void signal(int sig) const {
    if (!done_) ::kill(pid_, sig);
  }
  // True once the child has ended (it is then reaped: wait() returns at once).
  bool exited() {
    if (!done_ && ::waitpid(pid_, &status_, WNOHANG) == pid_) done_ = true;
    return done_;
  }
  Result wait() {
    if (!done_) ::waitpid(pid_, &status_, 0);
    done_ = true;
    Result r;
    r.code = WIFEXITED(status_) ? WEXITSTATUS(status_) : -WTERMSIG(status_);
    r.out = read_text(out_path_);
    r.err = read_text(err_path_);
    fs::remove(out_path_);
    fs::remove(err_path_);
    return r;
  }

 private:
  pid_t pid_ = -1;
  int status_ = 0;
  bool done_ = false;
  std::string out_path_, err_path_;
};

Result run_pactq(const std::vector<std::string>& args, const SpawnOptions& o = {}) {
  return Child(args, o).wait();
}

// The contract for a bad input: a non-zero exit that is not a crash, exactly
// one "pactq: error:" line that contains every one of `names`, no backtrace.
void expect_clear_error(const Result& r, const std::vector<std::string>& names) {
  EXPECT_GT(r.code, 0) << "exit status " << r.code << "; stderr:\n" << r.err;
  EXPECT_LT(r.code, 126) << "stderr:\n" << r.err;
  std::istringstream lines(r.err);
  std::string line, error_line;
  int errors = 0;
  while (std::getline(lines, line)) {
    if (line.rfind("pactq: error: ", 0) == 0) {
      ++errors;
      error_line = line;
    }
  }
  EXPECT_EQ(errors, 1) << "stderr:\n" << r.err;
  if (std::getenv("PACTQ_SHOW_ERRORS")) {  // to refresh docs/reliability.md
    std::printf("%s: exit %d: %s\n",
                ::testing::UnitTest::GetInstance()->current_test_info()->name(), r.code,
                error_line.c_str());
  }
  EXPECT_EQ(r.err.find("frame #"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("Exception raised from"), std::string::npos) << r.err;
  for (const auto& name : names) {
    EXPECT_NE(error_line.find(name), std::string::npos)
        << "expected '" << name << "' in the error line; stderr:\n"
        << r.err;
  }
}

void write_idx(const std::string& path, const pactq::data::IdxArray& a, int64_t n) {
  std::string bytes = {0, 0, 8, static_cast<char>(a.dims.size())};
  size_t per = 1;
  for (size_t d = 0; d < a.dims.size(); ++d) {
    const int64_t v = d == 0 ? n : a.dims[d];
    if (d > 0) per *= static_cast<size_t>(v);
    for (int s = 24; s >= 0; s -= 8) bytes.push_back(static_cast<char>((v >> s) & 0xFF));
  }
  bytes.append(reinterpret_cast<const char*>(a.data.data()), per * static_cast<size_t>(n));
  write_text(path, bytes);
}

void wait_for(const std::function<bool()>& ready, double seconds) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!ready() && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

bool checkpoint_loads(const std::string& path, std::string* why = nullptr) {
  try {
    const auto header = read_checkpoint_header(path);
    auto model = pactq::train::build_model(header.config, header.config.num_classes);
    pactq::train::load_checkpoint(path, *model, nullptr);
    return true;
  } catch (const std::exception& e) {
    if (why) *why = e.what();
    return false;
  }
}

std::vector<std::string> temp_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().find(".tmp.") != std::string::npos)
      out.push_back(e.path().string());
  }
  return out;
}

}  // namespace

// Shared by every row: tiny Fashion-MNIST copies (512 train, 256 test images,
// uncompressed), a lenet5 W4/A4 checkpoint after two steps, and its .pqm.
class BadInput : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(kFashion) || !fs::exists(kExe)) return;
    std::string pattern = (fs::temp_directory_path() / "pactq_reliability_XXXXXX").string();
    root_ = ::mkdtemp(pattern.data());
    fs::permissions(root_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                               fs::perms::others_read | fs::perms::others_exec);
    tiny_ = root_ + "/tiny";
    fs::create_directories(tiny_);
    for (const auto& [split, n] : {std::pair<std::string, int64_t>{"train", 512}, {"t10k", 256}}) {
      for (const auto& [kind, rank] :
           {std::pair<std::string, int>{"images-idx3", 3}, {"labels-idx1", 1}}) {
        const std::string name = split + "-" + kind + "-ubyte";
        write_idx(tiny_ + "/" + name, pactq::data::read_idx(kFashion + "/" + name + ".gz", rank),
                  n);
      }
    }
    const Result t = run_pactq(train_args({"--max-steps", "2", "--out", root_ + "/run"}));
    ASSERT_EQ(t.code, 0) << t.err;
    ckpt_ = root_ + "/run/last.pt";
    pqm_ = root_ + "/m.pqm";
    const Result e = run_pactq({"export", ckpt_, "-o", pqm_});
    ASSERT_EQ(e.code, 0) << e.err;
  }
  static void TearDownTestSuite() {
    if (!root_.empty()) fs::remove_all(root_);
  }
  void SetUp() override {
    if (!fs::exists(kFashion)) PACTQ_SKIP_MISSING("dataset-fashion-mnist not installed");
    ASSERT_TRUE(fs::exists(pqm_)) << "suite setup failed";
  }

  // lenet5 W4/A4 on the tiny copy: 16 steps an epoch of batch 32 (200 epochs:
  // the runs below stop by --max-steps or a signal).
  // Options in `more` replace the defaults of the same name.
  static std::vector<std::string> train_args(const std::vector<std::string>& more) {
    const std::vector<std::pair<std::string, std::string>> defaults = {
        {"--model", "lenet5"}, {"--dataset", "fashion-mnist"},
        {"--data-dir", tiny_}, {"--wbits", "4"},
        {"--abits", "4"},      {"--batch-size", "32"},
        {"--threads", "1"},    {"--workers", "1"}};
    std::vector<std::string> a = {"train", "--quiet"};
    for (const auto& [option, value] : defaults) {
      if (std::find(more.begin(), more.end(), option) != more.end()) continue;
      a.push_back(option);
      a.push_back(value);
    }
    a.insert(a.end(), more.begin(), more.end());
    return a;
  }
  // A copy of the tiny data with one file replaced by `bytes`.
  static std::string data_with(const std::string& name, const std::string& file,
                               const std::string& bytes) {
    const std::string dir = root_ + "/" + name;
    fs::create_directories(dir);
    for (const auto& e : fs::directory_iterator(tiny_))
      fs::copy_file(e.path(), dir + "/" + e.path().filename().string(),
                    fs::copy_options::overwrite_existing);
    write_text(dir + "/" + file, bytes);
    return dir;
  }
  // A copy of the trained run's directory.
  static std::string run_copy(const std::string& name) {
    const std::string dir = root_ + "/" + name;
    fs::copy(root_ + "/run", dir, fs::copy_options::recursive);
    return dir;
  }

  static std::string root_, tiny_, ckpt_, pqm_;
};
std::string BadInput::root_, BadInput::tiny_, BadInput::ckpt_, BadInput::pqm_;

// ---------------------------------------------------------------- checkpoints

TEST_F(BadInput, EvalTruncatedCheckpoint) {
  const std::string bad = root_ + "/trunc_eval.pt";
  truncate_copy(ckpt_, bad, 3000);
  expect_clear_error(run_pactq({"eval", bad}), {bad, "not a pactq checkpoint or truncated"});
}

TEST_F(BadInput, ExportTruncatedCheckpoint) {
  const std::string bad = root_ + "/trunc_export.pt";
  truncate_copy(ckpt_, bad, fs::file_size(ckpt_) / 2);
  expect_clear_error(run_pactq({"export", bad, "-o", root_ + "/trunc.pqm"}),
                     {bad, "not a pactq checkpoint or truncated"});
  EXPECT_FALSE(fs::exists(root_ + "/trunc.pqm"));
}

TEST_F(BadInput, TrainResumeFromTruncatedCheckpoint) {
  const std::string dir = run_copy("resume_trunc");
  truncate_copy(ckpt_, dir + "/last.pt", 100000);
  const std::string before = read_text(dir + "/last.pt");
  expect_clear_error(run_pactq(train_args({"--resume", "--max-steps", "3", "--out", dir})),
                     {dir + "/last.pt", "not a pactq checkpoint or truncated"});
  EXPECT_EQ(read_text(dir + "/last.pt"), before) << "the bad checkpoint must not be replaced";
}

// A checkpoint whose recipe names another model than its tensors.
TEST_F(BadInput, EvalAndExportCheckpointOfAnotherModel) {
  auto header = read_checkpoint_header(ckpt_);
  auto model = pactq::train::build_model(header.config, header.config.num_classes);
  pactq::train::load_checkpoint(ckpt_, *model, nullptr);
  header.config.model = "resnet20";
  const std::string bad = root_ + "/other_model.pt";
  pactq::train::save_checkpoint(bad, header.config, *model, nullptr, header.state);
  expect_clear_error(run_pactq({"eval", bad}), {bad, "tensor"});
  expect_clear_error(run_pactq({"export", bad, "-o", root_ + "/other.pqm"}), {bad, "tensor"});
}

TEST_F(BadInput, EvalGivenAPqm) {
  expect_clear_error(run_pactq({"eval", pqm_}), {pqm_, "not a pactq checkpoint"});
}

TEST_F(BadInput, InspectGivenACheckpoint) {
  expect_clear_error(run_pactq({"inspect", ckpt_}), {ckpt_, "not a .pqm file"});
}

// ---------------------------------------------------------------- .pqm files

// The loader behind run, inspect and bench, at every 1 KiB boundary.
TEST_F(BadInput, PqmTruncatedAtEveryKiB) {
  const std::string bytes = read_text(pqm_);
  ASSERT_GT(bytes.size(), 4096u);
  for (size_t n = 1024; n < bytes.size(); n += 1024) {
    const std::string cut = root_ + "/cut.pqm";
    write_text(cut, bytes.substr(0, n));
    try {
      pactq::rt::Model::load(cut);
      ADD_FAILURE() << "a .pqm cut at " << n << " bytes loaded";
    } catch (const std::exception& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.rfind(cut + ": ", 0), 0u) << n << ": " << what;
      EXPECT_EQ(what.find('\n'), std::string::npos) << n << ": " << what;
    }
  }
}

// Each command that reads a .pqm, through the binary, at the first and last KiB.
TEST_F(BadInput, InspectRunBenchTruncatedPqm) {
  const std::string bytes = read_text(pqm_);
  for (size_t n : {size_t{1024}, (bytes.size() - 1) / 1024 * 1024}) {
    const std::string cut = root_ + "/cut" + std::to_string(n) + ".pqm";
    write_text(cut, bytes.substr(0, n));
    SCOPED_TRACE(cut);
    expect_clear_error(run_pactq({"inspect", cut}), {cut});
    expect_clear_error(run_pactq({"run", cut, "--dataset", "fashion-mnist", "--data-dir", tiny_}),
                       {cut});
    expect_clear_error(run_pactq({"bench", "run", cut, "--rounds", "1", "--latency-reps", "1"}),
                       {cut});
  }
}

// ---------------------------------------------------------------- data

TEST_F(BadInput, TrainMissingDataDir) {
  const std::string dir = root_ + "/no_such_dir";
  expect_clear_error(run_pactq(train_args({"--data-dir", dir, "--out", root_ + "/o_missing"})),
                     {dir, "does not exist"});
}

TEST_F(BadInput, EvalDataDirIsAFile) {
  expect_clear_error(run_pactq({"eval", ckpt_, "--data-dir", pqm_}), {pqm_, "not a directory"});
}

TEST_F(BadInput, RunUnreadableDataDir) {
  const std::string dir = data_with("unreadable", "README", "");
  fs::permissions(dir, fs::perms::none);
  SpawnOptions o;
  o.as_nobody = true;  // root reads anything
  const Result r = run_pactq({"run", pqm_, "--dataset", "fashion-mnist", "--data-dir", dir}, o);
  fs::permissions(dir, fs::perms::owner_all);
  expect_clear_error(r, {dir, "Permission denied"});
}

TEST_F(BadInput, TrainTruncatedDataFile) {
  const std::string file = "train-images-idx3-ubyte";
  const std::string dir =
      data_with("trunc_data", file, read_text(tiny_ + "/" + file).substr(0, 5000));
  expect_clear_error(run_pactq(train_args({"--data-dir", dir, "--out", root_ + "/o_trunc"})),
                     {dir + "/" + file, "truncated"});
}

TEST_F(BadInput, EvalCorruptDataFile) {
  const std::string file = "t10k-labels-idx1-ubyte";
  const std::string dir = data_with("corrupt_data", file, "garbage that is not an idx file");
  expect_clear_error(run_pactq({"eval", ckpt_, "--data-dir", dir}), {dir + "/" + file, "magic"});
}

TEST_F(BadInput, RunTruncatedDataFile) {
  const std::string file = "t10k-images-idx3-ubyte";
  const std::string dir =
      data_with("trunc_test", file, read_text(tiny_ + "/" + file).substr(0, 9000));
  expect_clear_error(run_pactq({"run", pqm_, "--dataset", "fashion-mnist", "--data-dir", dir}),
                     {dir + "/" + file, "truncated"});
}

TEST_F(BadInput, ExportVerifyMissingDataDir) {
  const std::string dir = root_ + "/no_such_dir";
  expect_clear_error(
      run_pactq({"export", ckpt_, "-o", root_ + "/verify.pqm", "--verify", "8", "--data-dir", dir}),
      {dir, "does not exist"});
}

// ---------------------------------------------------------------- model and shape

TEST_F(BadInput, TrainUnknownModel) {
  // No --dataset: the default cifar10 has no default directory either; the
  // model is the first thing wrong.
  expect_clear_error(
      run_pactq({"train", "--model", "resnet21", "--quiet", "--out", root_ + "/o_m"}),
      {"--model", "resnet21", "lenet5"});
}

TEST_F(BadInput, RunOneChannelModelOnCifar) {
  if (!fs::exists(kCifar)) PACTQ_SKIP_MISSING("shared CIFAR-10 not present");
  expect_clear_error(run_pactq({"run", pqm_, "--dataset", "cifar10", "--data-dir", kCifar}),
                     {pqm_, "1x28x28", "3x32x32"});
}

TEST_F(BadInput, TrainOneChannelModelOnCifar) {
  if (!fs::exists(kCifar)) PACTQ_SKIP_MISSING("shared CIFAR-10 not present");
  expect_clear_error(run_pactq({"train", "--model", "lenet5", "--dataset", "cifar10", "--data-dir",
                                kCifar, "--limit-train", "64", "--batch-size", "32", "--max-steps",
                                "1", "--quiet", "--out", root_ + "/o_cifar"}),
                     {"lenet5", "1x28x28", "3x32x32"});
}

// ---------------------------------------------------------------- recipes

TEST_F(BadInput, RecipeUnknownKey) {
  const std::string cfg = root_ + "/epochz.toml";
  write_text(cfg, "[train]\nmodel = \"lenet5\"\nepochz = 3\n");
  expect_clear_error(run_pactq(train_args({"--config", cfg, "--out", root_ + "/o_cfg"})),
                     {cfg, "unknown key 'epochz'", "[train]"});
}

TEST_F(BadInput, RecipeWrongType) {
  const std::string cfg = root_ + "/type.toml";
  write_text(cfg, "[train]\nmodel = \"lenet5\"\nepochs = \"ten\"\n");
  expect_clear_error(run_pactq(train_args({"--config", cfg, "--out", root_ + "/o_type"})),
                     {cfg, "epochs", "ten", "integer"});
}

TEST_F(BadInput, RecipeUnknownSection) {
  const std::string cfg = root_ + "/section.toml";
  write_text(cfg, "[trian]\nepochs = 3\n");
  expect_clear_error(run_pactq(train_args({"--config", cfg, "--out", root_ + "/o_sec"})),
                     {cfg, "[trian]"});
}

TEST_F(BadInput, RecipeMissing) {
  const std::string cfg = root_ + "/no_such_recipe.toml";
  expect_clear_error(run_pactq(train_args({"--config", cfg, "--out", root_ + "/o_nocfg"})), {cfg});
}

// ---------------------------------------------------------------- conflicting flags

TEST_F(BadInput, EvalCheckpointWithNetworkFlags) {
  expect_clear_error(run_pactq({"eval", ckpt_, "--wbits", "2"}), {"--wbits", ckpt_});
}

TEST_F(BadInput, TrainResumeWithAnotherModel) {
  const std::string dir = run_copy("resume_other");
  const std::string before = read_text(dir + "/last.pt");
  expect_clear_error(
      run_pactq(train_args({"--model", "resnet20", "--resume", "--max-steps", "3", "--out", dir})),
      {"--model", "resnet20", "lenet5", dir + "/last.pt"});
  EXPECT_EQ(read_text(dir + "/last.pt"), before);
}

TEST_F(BadInput, ExportOverItsOwnCheckpoint) {
  const std::string dir = run_copy("export_self");
  const std::string before = read_text(dir + "/last.pt");
  expect_clear_error(run_pactq({"export", dir + "/last.pt", "-o", dir + "/last.pt"}),
                     {"-o", dir + "/last.pt"});
  EXPECT_EQ(read_text(dir + "/last.pt"), before) << "the checkpoint was overwritten";
}

// CLI11's own errors take the same one-line form.
TEST_F(BadInput, TrainOptionGivenTwice) {
  expect_clear_error(
      run_pactq(train_args({"--data-dir", tiny_, "--data-dir", tiny_, "--out", root_ + "/o_2"})),
      {"--data-dir"});
}

TEST_F(BadInput, TrainOutIsAFile) {
  expect_clear_error(run_pactq(train_args({"--max-steps", "0", "--out", pqm_})), {"--out", pqm_});
}

// ---------------------------------------------------------------- writes and signals

// A full disk (a file-size limit): the error names the file, the previous
// checkpoint stays and no temporary file is left behind.
TEST_F(BadInput, TrainFullDiskKeepsLastCheckpoint) {
  const std::string dir = run_copy("full_disk");
  const std::string before = read_text(dir + "/last.pt");
  SpawnOptions o;
  o.max_file_bytes = 64 * 1024;  // the checkpoint is ~530 KB, config.json ~1 KB
  expect_clear_error(run_pactq(train_args({"--resume", "--max-steps", "4", "--out", dir}), o),
                     {dir + "/last.pt", "File too large"});
  EXPECT_EQ(read_text(dir + "/last.pt"), before);
  EXPECT_TRUE(checkpoint_loads(dir + "/last.pt"));
  EXPECT_TRUE(temp_files(dir).empty());
}

TEST_F(BadInput, ExportFullDiskKeepsPreviousModel) {
  const std::string dir = root_ + "/full_export";
  fs::create_directories(dir);
  fs::copy_file(pqm_, dir + "/m.pqm");
  const std::string before = read_text(dir + "/m.pqm");
  SpawnOptions o;
  o.max_file_bytes = 8 * 1024;
  expect_clear_error(run_pactq({"export", ckpt_, "-o", dir + "/m.pqm"}, o),
                     {dir + "/m.pqm", "File too large"});
  EXPECT_EQ(read_text(dir + "/m.pqm"), before);
  EXPECT_TRUE(temp_files(dir).empty());
}

// Ctrl-C: the step in progress finishes, last.pt is written, exit 130, and
// --resume continues from there.
TEST_F(BadInput, TrainSigintStopsCleanlyAndResumes) {
  const std::string dir = root_ + "/sigint";
  Child c(train_args({"--epochs", "50", "--checkpoint-every", "1", "--out", dir}));
  wait_for([&] { return c.exited() || fs::exists(dir + "/last.pt"); }, 60);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  c.signal(SIGINT);
  const Result r = c.wait();
  EXPECT_EQ(r.code, 130) << r.err;
  if (std::getenv("PACTQ_SHOW_ERRORS")) std::printf("sigint: exit %d: %s", r.code, r.err.c_str());
  EXPECT_NE(r.err.find("pactq: interrupted"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(dir + "/last.pt"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("frame #"), std::string::npos) << r.err;
  std::string why;
  ASSERT_TRUE(checkpoint_loads(dir + "/last.pt", &why)) << why;
  const int64_t step = read_checkpoint_header(dir + "/last.pt").state.global_step;
  EXPECT_GT(step, 0);
  const Result resumed =
      run_pactq(train_args({"--resume", "--max-steps", std::to_string(step + 2), "--out", dir}));
  EXPECT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_EQ(read_checkpoint_header(dir + "/last.pt").state.global_step, step + 2);
}

// SIGKILL at random moments of a run that checkpoints every step: whenever
// it dies, last.pt is a complete checkpoint (temp file + rename).
TEST_F(BadInput, TrainSigkillDuringCheckpointWritesKeepsLastLoadable) {
  const std::string dir = root_ + "/sigkill";
  const std::string last = dir + "/last.pt";
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> delay_ms(0, 120);
  for (int round = 0; round < 5; ++round) {
    const auto stamp = fs::exists(last) ? fs::last_write_time(last) : fs::file_time_type::min();
    Child c(train_args({"--epochs", "50", "--checkpoint-every", "1", "--resume", "--out", dir}));
    // Once this run is writing checkpoints, kill it somewhere in the next steps.
    wait_for([&] { return c.exited() || (fs::exists(last) && fs::last_write_time(last) != stamp); },
             60);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    c.signal(SIGKILL);
    EXPECT_EQ(c.wait().code, -SIGKILL);
    std::string why;
    ASSERT_TRUE(checkpoint_loads(last, &why)) << "round " << round << ": " << why;
  }
  const int64_t step = read_checkpoint_header(last).state.global_step;
  const Result r =
      run_pactq(train_args({"--resume", "--max-steps", std::to_string(step + 1), "--out", dir}));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(checkpoint_loads(last));
}

// A writer killed with SIGKILL leaves FILE.tmp.<pid>; the next write of FILE
// removes the temps of dead processes, and only those of FILE.
TEST(AtomicWrite, NextWriteSweepsTempsOfDeadWriters) {
  std::string pattern = (fs::temp_directory_path() / "pactq_temps_XXXXXX").string();
  const std::string dir = ::mkdtemp(pattern.data());
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ASSERT_GT(child, 0);
  ASSERT_EQ(::waitpid(child, nullptr, 0), child);  // reaped: the pid names no process now
  const std::string dead = dir + "/last.pt.tmp." + std::to_string(child);
  const std::string live = dir + "/last.pt.tmp." + std::to_string(::getppid());
  const std::string other = dir + "/best.pt.tmp." + std::to_string(child);
  const std::string not_a_pid = dir + "/last.pt.tmp.x1";
  for (const std::string& f : {dead, live, other, not_a_pid}) std::ofstream(f) << "partial";
  const std::string text = "complete";
  pactq::write_bytes_atomically(dir + "/last.pt", text.data(), text.size());
  EXPECT_FALSE(fs::exists(dead)) << "a dead writer's temp stays forever";
  EXPECT_TRUE(fs::exists(live)) << "a live writer's temp was removed under it";
  EXPECT_TRUE(fs::exists(other)) << "another file's temp is not this write's business";
  EXPECT_TRUE(fs::exists(not_a_pid));
  std::ifstream in(dir + "/last.pt");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), text);
  fs::remove_all(dir);
}
