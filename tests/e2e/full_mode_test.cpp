// `full` mode on a real cgroup v2 kernel (run inside the VM by tests/vm/run.sh). Skipped unless
// PYSANDBOX_VM_TESTS=1: these tests create cgroups, which must never happen on a host whose
// /sys/fs/cgroup is not ours.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json/serialize.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <regex>

#include "tests/e2e/http_client.hpp"
#include "tests/e2e/server_process.hpp"

namespace pysandbox::e2e {
namespace {

constexpr const char* kSandboxes = "/sys/fs/cgroup/pysandbox/sandboxes";

bool vm_tests_enabled() {
  const char* e = std::getenv("PYSANDBOX_VM_TESTS");
  return e != nullptr && std::string(e) == "1";
}

std::string mode_of(unsigned short port) {
  auto doc = http(port, {.target = "/healthz"}).json();
  if (!doc.is_object()) return "";
  return std::string(doc.as_object().at("isolation").as_object().at("mode").as_string());
}

std::size_t leaves_left() {
  std::size_t n = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(kSandboxes, ec)) n += e.is_directory();
  return n;
}

const boost::json::object& usage(const boost::json::value& doc) {
  return doc.as_object().at("usage").as_object();
}

double number(const boost::json::value& v) {
  return v.is_double() ? v.as_double() : static_cast<double>(v.as_int64());
}

class FullMode : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!vm_tests_enabled()) GTEST_SKIP() << "PYSANDBOX_VM_TESTS=1 not set (runs in the VM)";
  }
  // The VM runs code 13-30x slower than the host: generous timeouts.
  static constexpr const char* kSlow = R"("timeout_ms": 30000)";
};

TEST_F(FullMode, HealthzReportsFullWithTheThreeControllers) {
  ServerProcess server;
  auto doc = http(server.port(), {.target = "/healthz"}).json().as_object();
  const auto& iso = doc.at("isolation").as_object();
  EXPECT_EQ(iso.at("mode"), "full") << boost::json::serialize(iso);
  EXPECT_EQ(iso.at("cgroup"), "v2");
  EXPECT_EQ(boost::json::serialize(iso.at("controllers")), R"(["cpu","memory","pids"])");
}

TEST_F(FullMode, LargeAllocationUnderASmallLimitIsMemoryLimit) {
  ServerProcess server;
  auto r = execute(server.port(),
                   "def main():\n    x = bytearray(600 * 1024 * 1024)\n    return len(x)\n",
                   std::string(R"("memory_mb": 128, )") + kSlow);
  ASSERT_EQ(r.status, 422u) << r.body;
  auto doc = r.json();
  EXPECT_EQ(doc.as_object().at("error_type"), "memory_limit") << r.body;
  EXPECT_LE(number(usage(doc).at("peak_memory_bytes")), 128.0 * 1024 * 1024 * 1.01);
  std::cout << "memory_limit response: " << r.body << std::endl;
  EXPECT_EQ(http(server.port(), {.target = "/healthz"}).status, 200u);
}

TEST_F(FullMode, ForkBombIsHeldAtPidsMaxAndEndsAtTheDeadline) {
  ServerProcess server({"--pids-max", "24"});
  auto r = execute(server.port(), R"(
import os, time
def main():
    n = 0
    while True:
        try:
            pid = os.fork()
        except OSError:
            print("held at", n, flush=True)
            while True:
                time.sleep(1)
        if pid == 0:
            while True:
                time.sleep(1)
        n += 1
)",
                   R"("timeout_ms": 8000)");
  ASSERT_EQ(r.status, 422u) << r.body;
  auto doc = r.json().as_object();
  EXPECT_EQ(doc.at("error_type"), "timeout") << r.body;
  std::smatch m;
  const std::string out(doc.at("stdout").as_string());
  ASSERT_TRUE(std::regex_search(out, m, std::regex("held at (\\d+)"))) << r.body;
  // pids.max counts the runner itself too; RLIMIT_NPROC (2x) would have allowed more.
  EXPECT_LE(std::stoi(m[1]), 23) << out;
  EXPECT_GE(std::stoi(m[1]), 18) << out;
  std::cout << "fork bomb response: " << r.body << std::endl;
}

TEST_F(FullMode, CpuCapLimitsCpuTimeToItsShareOfWallTime) {
  ServerProcess server({"--cpu-cores", "0.2"});
  auto r = execute(server.port(), R"(
import time
def main():
    end = time.monotonic() + 3
    n = 0
    while time.monotonic() < end:
        n += 1
    return n
)",
                   kSlow);
  ASSERT_EQ(r.status, 200u) << r.body;
  const auto doc = r.json();  // usage() refers into it: keep it alive
  const auto& u = usage(doc);
  const double share = number(u.at("cpu_ms")) / number(u.at("wall_ms"));
  std::cout << "cpu share under a 0.2 cap: " << share << " (" << r.body << ")" << std::endl;
  EXPECT_GT(share, 0.12);
  EXPECT_LT(share, 0.30);
}

TEST_F(FullMode, PeakMemoryTracksA100MiBArray) {
  ServerProcess server;
  // The first run that loads numpy also has its shared libraries' page cache charged to its
  // leaf: warm the cache first so baseline and array runs are charged alike.
  execute(server.port(), "import numpy as np\ndef main():\n    return 0\n", kSlow);
  auto base = execute(server.port(), "import numpy as np\ndef main():\n    return 0\n", kSlow);
  auto big = execute(server.port(),
                     "import numpy as np\ndef main():\n    a = np.ones(100 * 2**20 // 8)\n"
                     "    return float(a[-1])\n",
                     kSlow);
  ASSERT_EQ(base.status, 200u) << base.body;
  ASSERT_EQ(big.status, 200u) << big.body;
  const double delta = number(usage(big.json()).at("peak_memory_bytes")) -
                       number(usage(base.json()).at("peak_memory_bytes"));
  std::cout << "peak with a 100 MiB array minus baseline: " << delta / (1 << 20) << " MiB"
            << std::endl;
  EXPECT_NEAR(delta, 100.0 * (1 << 20), 20.0 * (1 << 20));
}

TEST_F(FullMode, NoLeafSurvivesTwoHundredRequestsIncludingKilledOnes) {
  ServerProcess server({"--max-concurrency", "2"});
  auto worker = [&](int first) {
    int ok = 0;
    for (int i = first; i < 200; i += 2) {
      // Every other one is killed by its deadline (killed runs are the teardown path most likely
      // to leave something behind): cold, mostly while the interpreter is starting; warm, in the
      // script's loop (a warm child finishes `return 1` well within 50 ms).
      const bool kill = (i / 2) % 2 == 0;
      auto r =
          execute(server.port(), kill ? "while True:\n    pass\n" : "def main():\n    return 1\n",
                  kill ? R"("timeout_ms": 50)" : kSlow);
      ok += (kill ? r.status == 422u : r.status == 200u);
    }
    return ok;
  };
  auto a = std::async(std::launch::async, worker, 0);
  auto b = std::async(std::launch::async, worker, 1);
  EXPECT_EQ(a.get() + b.get(), 200);
  EXPECT_EQ(leaves_left(), 0u);
}

TEST_F(FullMode, WithoutDelegationPicksNamespacesAndSaysWhy) {
  // A cgroup whose parent enables no controllers for it: nothing is delegated.
  const std::string parent = "/sys/fs/cgroup/pysandbox-e2e-nodeleg";
  const std::string inner = parent + "/inner";
  ::mkdir(parent.c_str(), 0755);
  ASSERT_EQ(::mkdir(inner.c_str(), 0755) == 0 || errno == EEXIST, true);
  {
    ServerProcess server({}, {}, inner);
    EXPECT_EQ(mode_of(server.port()), "namespaces");
    auto doc = http(server.port(), {.target = "/healthz"}).json().as_object();
    const auto& iso = doc.at("isolation").as_object();
    EXPECT_EQ(iso.at("cgroup"), "unavailable");
    EXPECT_FALSE(iso.at("reason").as_string().empty());
    EXPECT_NE(server.wait_for_log("\"capability\":\"cgroup_v2\",\"ok\":false"), "");
    std::cout << "without delegation: " << boost::json::serialize(iso) << std::endl;
  }
  ::rmdir(inner.c_str());
  ::rmdir(parent.c_str());
}

}  // namespace
}  // namespace pysandbox::e2e
