// Data-parallel training through the CLI on loopback (Gloo): 2 and 3 processes end with the same
// weights (each checkpoint checks it across ranks) and match a single process with the same global
// batch; a killed rank stops the others with an error naming it; resume with another number of
// processes; torchrun launches it unchanged; a port in use and an unreachable address are clear
// errors. Needs Debian's dataset-fashion-mnist (skipped without it).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "io/config.h"
#include "io/safetensors.h"
#include "tools/cli_test_util.h"

namespace fs = std::filesystem;

namespace {

// A small VQ-VAE run: a global batch of 24 (2 or 3 processes), 12 steps, checkpoints every 6.
std::string distributed_config(const std::string& dir) {
  fs::create_directories(dir);
  const std::string path = dir + "/tiny_vq.yaml";
  std::ofstream(path) << "model:\n  type: vqvae\n  preset: fashion\n  hidden: [16, 32]\n"
                         "  quantizer:\n    num_codes: 64\n    code_dim: 16\n"
                         "data:\n  root: fashion-mnist\n  limit: 480\n"
                         "train:\n  steps: 12\n  batch_size: 24\n  log_every: 2\n"
                         "  checkpoint_every: 6\n  warmup_steps: 2\n  num_workers: 0\n"
                         "  preview_every: -1\n";
  return path;
}

std::string distributed_root(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/dist_" + name + "_" + std::to_string(getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// The largest ||a - b|| / ||a|| over the tensors of two weight files (integer ones must be equal).
double weight_difference(const std::string& a_path, const std::string& b_path) {
  const auto a = lf::load_safetensors(a_path), b = lf::load_safetensors(b_path);
  double worst = 0;
  for (const auto& [name, ta] : a) {
    const auto& tb = b.at(name);
    if (!ta.is_floating_point()) {
      EXPECT_TRUE(torch::equal(ta, tb)) << name;
      continue;
    }
    const double norm = std::max(1e-12, ta.norm().item<double>());
    worst = std::max(worst, (ta - tb).norm().item<double>() / norm);
  }
  return worst;
}

// The logged losses of two runs, step by step: the largest relative difference.
double loss_difference(const std::string& a_run, const std::string& b_run) {
  std::ifstream a(a_run + "/log.jsonl"), b(b_run + "/log.jsonl");
  double worst = 0;
  for (std::string la, lb; std::getline(a, la) && std::getline(b, lb);) {
    const auto ra = lf::Json::parse(la), rb = lf::Json::parse(lb);
    EXPECT_EQ(ra["step"], rb["step"]);
    const double x = ra["loss"], y = rb["loss"];
    worst = std::max(worst, std::abs(x - y) / std::abs(x));
  }
  return worst;
}

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(addr);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length);
  close(fd);
  return static_cast<int>(ntohs(addr.sin_port));
}

size_t log_steps_once(const std::string& run, int64_t steps) {
  std::ifstream in(run + "/log.jsonl");
  std::set<int64_t> seen;
  size_t lines = 0;
  for (std::string line; std::getline(in, line);) {
    const auto record = lf::Json::parse(line, nullptr, false);
    if (!record.is_object() || !record.contains("step")) continue;
    ++lines;
    EXPECT_TRUE(seen.insert(record["step"].get<int64_t>()).second) << "step logged twice: " << line;
  }
  EXPECT_EQ(*seen.rbegin(), steps);
  return lines;
}

class TrainDistributed : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!lf::test::fashion_mnist_installed()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  }
};

TEST_F(TrainDistributed, TwoAndThreeProcessesMatchOneWithTheSameGlobalBatch) {
  const std::string root = distributed_root("match");
  const std::string config = distributed_config(root);
  const auto single = lf::test::run_cli("--threads 2 train --config " + config + " --out " + root +
                                        "/one --no-report");
  ASSERT_EQ(single.code, 0) << single.output;
  for (int n : {2, 3}) {
    const std::string run = root + "/n" + std::to_string(n);
    const auto start = std::chrono::steady_clock::now();
    const auto result = lf::test::run_cli("train --nproc " + std::to_string(n) + " --config " +
                                          config + " --out " + run + " --no-report");
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_EQ(result.code, 0) << result.output;
    EXPECT_NE(result.output.find("in each of " + std::to_string(n) + " processes"),
              std::string::npos)
        << result.output;
    // Every checkpoint compared the ranks' weights bit for bit (it fails otherwise); the run
    // follows the single process up to the order of the reductions (Adam turns float32 noise in
    // near-zero gradients into small weight differences).
    const double diff =
        weight_difference(root + "/one/model.safetensors", run + "/model.safetensors");
    const double loss = loss_difference(root + "/one", run);
    std::printf(
        "train --nproc %d: %.1f s; against one process: weights %.1e, logged losses %.1e "
        "(relative)\n",
        n, seconds, diff, loss);
    EXPECT_LT(diff, 2e-3);
    EXPECT_LT(loss, 1e-4);
    EXPECT_EQ(log_steps_once(run, 12), 6u);
  }
}

// The report's evaluation is split over the ranks (every other batch of 256 test images here) and
// reduced: it equals a one-process `eval` of the saved weights on the same images (one thread, as
// each of the two ranks on this 2-core machine, so that the codes come out the same).
TEST_F(TrainDistributed, EvaluationIsSplitOverTheRanksAndReduced) {
  const std::string root = distributed_root("eval");
  const std::string config = distributed_config(root);
  const std::string run = root + "/n2";
  const auto trained = lf::test::run_cli("train --nproc 2 --config " + config + " --out " + run +
                                         " --eval-limit 300");
  ASSERT_EQ(trained.code, 0) << trained.output;
  const auto single = lf::test::run_cli("--threads 1 eval --model " + run + " --limit 300 --out " +
                                        root + "/single.json");
  ASSERT_EQ(single.code, 0) << single.output;
  const auto read = [](const std::string& path) {
    std::ifstream in(path);
    return lf::Json::parse(in);
  };
  const auto reduced = read(run + "/metrics.json"), alone = read(root + "/single.json");
  EXPECT_EQ(reduced["images"], 300);
  EXPECT_EQ(reduced["processes"], 2);  // both ranks evaluated, each its share
  EXPECT_EQ(alone["images"], 300);
  EXPECT_FALSE(alone.contains("processes"));
  for (const char* key : {"mse", "psnr", "ssim"})
    EXPECT_NEAR(reduced[key].get<double>(), alone[key].get<double>(),
                1e-6 * std::abs(alone[key].get<double>()))
        << key;
  // Code counts add up exactly.
  EXPECT_EQ(reduced["codebook"]["unused_codes"], alone["codebook"]["unused_codes"]);
  EXPECT_DOUBLE_EQ(reduced["codebook"]["perplexity"].get<double>(),
                   alone["codebook"]["perplexity"].get<double>());
}

// A classifier's report is measured by both ranks too (eval/sample_score.h; the reduction itself is
// checked against one process in tests/eval/data_parallel_eval_test.cpp).
TEST_F(TrainDistributed, AClassifierReportIsMeasuredByEveryRank) {
  const std::string root = distributed_root("classifier");
  const std::string config = root + "/classifier.yaml";
  std::ofstream(config) << "model:\n  type: classifier\n  preset: fashion\n"
                           "data:\n  root: fashion-mnist\n  limit: 480\n"
                           "train:\n  steps: 4\n  batch_size: 24\n  log_every: 2\n"
                           "  num_workers: 0\n";
  const std::string run = root + "/run";
  const auto trained = lf::test::run_cli("train --nproc 2 --config " + config + " --out " + run +
                                         " --eval-limit 300");
  ASSERT_EQ(trained.code, 0) << trained.output;
  std::ifstream in(run + "/metrics.json");
  const auto metrics = lf::Json::parse(in);
  EXPECT_EQ(metrics["processes"], 2);
  EXPECT_EQ(metrics["images"], 300);
  EXPECT_EQ(metrics["per_class_accuracy"].size(), 10u);
}

// Two ranks started by hand (as torchrun would), rank 1 then killed (SIGKILL) or hung (SIGSTOP)
// once the run is under way: rank 0's exit status, its output and how long it took to stop.
struct FaultOutcome {
  int status = 0;
  bool stopped = false;
  double seconds = 0;
  std::string output;
  pid_t rank1 = 0;
};

FaultOutcome run_with_a_faulty_rank(const std::string& name, int signal, const char* timeout) {
  const std::string root = distributed_root(name);
  const std::string config = distributed_config(root);
  const int port = free_port();
  const std::string log0 = root + "/rank0.log";
  std::vector<pid_t> pids;
  for (int rank = 0; rank < 2; ++rank) {
    const pid_t pid = fork();
    if (pid == 0) {
      setenv("RANK", std::to_string(rank).c_str(), 1);
      setenv("WORLD_SIZE", "2", 1);
      setenv("MASTER_ADDR", "127.0.0.1", 1);
      setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      const std::string out = rank == 0 ? log0 : root + "/rank1.log";
      freopen(out.c_str(), "w", stdout);
      dup2(fileno(stdout), STDERR_FILENO);
      execl(LF_CLI_PATH, LF_CLI_PATH, "--threads", "1", "train", "--config", config.c_str(),
            "--out", (root + "/run").c_str(), "--set", "train.steps=100000", "--dist-timeout",
            timeout, "--no-report", static_cast<char*>(nullptr));
      _exit(127);
    }
    pids.push_back(pid);
  }
  for (int i = 0; i < 600 && !fs::exists(root + "/run/log.jsonl"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  kill(pids[1], signal);
  const auto at = std::chrono::steady_clock::now();
  FaultOutcome o;
  o.rank1 = pids[1];
  pid_t done = 0;
  while (done == 0 && std::chrono::steady_clock::now() - at < std::chrono::seconds(60)) {
    done = waitpid(pids[0], &o.status, WNOHANG);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - at).count();
  o.stopped = done != 0;
  for (pid_t pid : pids) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  std::ifstream in(log0);
  o.output.assign(std::istreambuf_iterator<char>(in), {});
  return o;
}

TEST_F(TrainDistributed, AKilledRankStopsTheOthersNamingIt) {
  const FaultOutcome o = run_with_a_faulty_rank("killed", SIGKILL, "30");
  ASSERT_TRUE(o.stopped) << "rank 0 still running 60 s after rank 1 was killed";
  EXPECT_TRUE(WIFEXITED(o.status) && WEXITSTATUS(o.status) != 0) << o.output;
  EXPECT_NE(o.output.find("rank 1 (pid " + std::to_string(o.rank1) + ") is gone"),
            std::string::npos)
      << o.output;
  std::printf("a killed rank stopped rank 0 after %.1f s\n", o.seconds);
}

TEST_F(TrainDistributed, AHungRankStopsTheOthersAfterTheTimeout) {
  const FaultOutcome o = run_with_a_faulty_rank("hung", SIGSTOP, "4");
  ASSERT_TRUE(o.stopped) << "rank 0 still running 60 s after rank 1 stopped answering";
  EXPECT_TRUE(WIFEXITED(o.status) && WEXITSTATUS(o.status) != 0) << o.output;
  EXPECT_NE(o.output.find("rank 0: "), std::string::npos) << o.output;
  EXPECT_NE(o.output.find(" failed"), std::string::npos) << o.output;
  EXPECT_LT(o.seconds, 30.0);
  std::printf("a hung rank stopped rank 0 after %.1f s (--dist-timeout 4)\n", o.seconds);
}

TEST_F(TrainDistributed, ResumesWithAnotherNumberOfProcesses) {
  const std::string root = distributed_root("resume");
  const std::string config = distributed_config(root);
  for (int n : {1, 3}) {
    const std::string run = root + "/from2to" + std::to_string(n);
    const auto first = lf::test::run_cli("train --nproc 2 --config " + config + " --out " + run +
                                         " --set train.steps=6 --no-report");
    ASSERT_EQ(first.code, 0) << first.output;
    const auto resumed =
        lf::test::run_cli(std::string("train") + (n > 1 ? " --nproc " + std::to_string(n) : "") +
                          " --resume " + run + " --set train.steps=12 --no-report");
    ASSERT_EQ(resumed.code, 0) << resumed.output;
    EXPECT_NE(resumed.output.find("resumed from"), std::string::npos) << resumed.output;
    EXPECT_EQ(log_steps_once(run, 12), 6u);
    EXPECT_TRUE(fs::exists(run + "/model.safetensors"));
  }
}

TEST_F(TrainDistributed, TorchrunLaunchesItUnchanged) {
  if (!fs::exists("/usr/bin/torchrun")) GTEST_SKIP() << "torchrun (python3-torch) not installed";
  const std::string root = distributed_root("torchrun");
  const std::string config = distributed_config(root);
  // The static rendezvous (torchrun's agent serves the store) and the c10d one (--standalone: the
  // workers' rank 0 serves it).
  for (const std::string& mode :
       {"--nnodes 1 --master_port " + std::to_string(free_port()), std::string("--standalone")}) {
    const std::string run = root + "/run" + std::to_string(mode.size());
    const auto result = lf::test::run_cli_command(
        // --redirects 2 --tee 2: Debian's torchrun 1.13 under Python 3.11 fails on its default
        // "0" (IntFlag iteration skips zero), so stderr is redirected and copied to the console.
        "OMP_NUM_THREADS=1 /usr/bin/torchrun " + mode +
        " --nproc_per_node 2 --redirects 2 --tee 2 --no_python " + std::string(LF_CLI_PATH) +
        " train --config " + config + " --out " + run + " --no-report");
    ASSERT_EQ(result.code, 0) << mode << "\n" << result.output;
    EXPECT_NE(result.output.find("in each of 2 processes"), std::string::npos) << result.output;
    EXPECT_EQ(log_steps_once(run, 12), 6u);
  }
}

TEST_F(TrainDistributed, APortInUseOrAWrongAddressIsAClearError) {
  const std::string root = distributed_root("errors");
  const std::string config = distributed_config(root);
  // Something else listens on the port.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(addr);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 4), 0);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length);
  const std::string port = std::to_string(ntohs(addr.sin_port));
  const auto in_use = lf::test::run_cli_command(
      "RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + port + " " + LF_CLI_PATH +
      " train --config " + config + " --out " + root + "/a --dist-timeout 5 --no-report");
  close(fd);
  EXPECT_NE(in_use.code, 0);
  EXPECT_NE(in_use.output.find("cannot serve the rendezvous at 127.0.0.1:" + port),
            std::string::npos)
      << in_use.output;
  // Rank 1 looking for a rank 0 that is not there.
  const auto unreachable = lf::test::run_cli_command(
      "RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + port + " " + LF_CLI_PATH +
      " train --config " + config + " --out " + root + "/b --dist-timeout 3 --no-report");
  EXPECT_NE(unreachable.code, 0);
  EXPECT_NE(unreachable.output.find("cannot reach the rendezvous"), std::string::npos)
      << unreachable.output;
  const auto bad_env = lf::test::run_cli_command("RANK=5 WORLD_SIZE=2 " + std::string(LF_CLI_PATH) +
                                                 " train --config " + config + " --no-report");
  EXPECT_NE(bad_env.code, 0);
  EXPECT_NE(bad_env.output.find("RANK='5': expected an integer in [0, 1]"), std::string::npos)
      << bad_env.output;
}

}  // namespace
