// The rlimit-mode executor end to end on this host (forced with --isolation rlimit): real
// interpreter, the rlimit seccomp policy, a dedicated uid per slot, SIGCHLD-based waiting; each
// test twice: with the namespaces a root server can still create (PID, mount with a private
// /tmp, network, IPC, UTS: what gVisor allows) and without any (--rlimit-namespaces=off: a
// scratch directory per run, the host's /tmp shared).
#include "executor/rlimit_executor.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json/serialize.hpp>
#include <filesystem>
#include <fstream>

#include "executor/factory.hpp"
#include "executor/tests/limit_cases.hpp"
#include "jail/rlimit_spawner.hpp"
#include "jail/uid_sweep.hpp"

namespace pysandbox::executor {
namespace {

using namespace std::chrono_literals;

constexpr uid_t kUidBase = 2000700;

class RlimitExecutorTest : public ::testing::TestWithParam<bool> {
 protected:
  static void SetUpTestSuite() {
    settings_ = new Settings();
    settings_->data_dir = PYSANDBOX_DATA_DIR;
    settings_->max_output_bytes = kSuiteOutputCap;
    settings_->uid_base = kUidBase;
    settings_->forced_isolation = Isolation::kRlimit;
  }
  static void TearDownTestSuite() { delete settings_; }

  void SetUp() override { settings_->rlimit_namespaces = namespaces(); }
  static bool namespaces() { return GetParam(); }

  void TearDown() override {
    // After every run: nothing of any slot's uid is left.
    for (unsigned slot = 0; slot < 2; ++slot)
      EXPECT_TRUE(jail::processes_of_uid(kUidBase + slot).empty()) << "slot " << slot;
  }

  static ExecuteRequest request(std::string script, std::chrono::milliseconds timeout = 10s,
                                std::uint64_t memory = 256ull << 20, unsigned slot = 0) {
    ExecuteRequest req;
    req.request_id = "test";
    req.script = std::move(script);
    req.timeout = timeout;
    req.memory_bytes = memory;
    req.slot = slot;
    return req;
  }

  RunOutcome run(std::string script, std::chrono::milliseconds timeout = 10s,
                 std::uint64_t memory = 256ull << 20, std::string stdin_data = {},
                 Settings* settings = nullptr) {
    boost::asio::io_context io;
    auto executor = make_executor(io.get_executor(), settings ? *settings : *settings_);
    EXPECT_EQ(executor->isolation(), Isolation::kRlimit);
    auto req = request(std::move(script), timeout, memory);
    req.stdin_data = std::move(stdin_data);
    auto fut = boost::asio::co_spawn(io, executor->run(std::move(req)), boost::asio::use_future);
    io.run();
    return fut.get();
  }

  static Settings* settings_;
};
Settings* RlimitExecutorTest::settings_ = nullptr;

TEST_P(RlimitExecutorTest, ReturnsMainsResultAndStdoutRunningAsTheSlotsUid) {
  auto o =
      run("import os\n"
          "def main():\n"
          "    print('len:', 3)\n"
          "    return {'ids': [os.getuid(), os.geteuid(), os.getgid()], 'groups': os.getgroups(),\n"
          "            'init_leads': os.getppid() == os.getpgid(0) == os.getsid(0)}\n");
  ASSERT_EQ(o.status, Status::kOk) << o.message << o.stderr_data << o.internal_detail;
  EXPECT_EQ(boost::json::serialize(o.result),
            R"({"ids":[2000700,2000700,2000700],"groups":[],"init_leads":true})");
  EXPECT_EQ(o.stdout_data, "len: 3\n");
  EXPECT_EQ(o.isolation, Isolation::kRlimit);
  expect_usage_measured(o);
}

TEST_P(RlimitExecutorTest, LimitsEndTheRunAsInEveryMode) {
  for (const auto& c : kLimitCases)
    expect_limit_outcome(c, run(c.script, c.timeout, c.memory_bytes));
}

TEST_P(RlimitExecutorTest, DaemonsDoNotOutliveTheRun) {
  // Left in a session of its own, its fds closed: only the uid-wide kill finds it.
  auto o =
      run("import os, time\n"
          "def main():\n"
          "    if os.fork() == 0:\n"
          "        try:\n"
          "            os.setsid()\n"
          "        except OSError:\n"
          "            pass\n"
          "        if os.fork() == 0:\n"
          "            for fd in (0, 1, 2, 4):\n"
          "                os.close(fd)\n"
          "            time.sleep(1000)\n"
          "        os._exit(0)\n"
          "    return 'parent done'\n");
  EXPECT_EQ(o.status, Status::kOk) << o.message;
  // TearDown checks that no process of the uid is left.
}

TEST_P(RlimitExecutorTest, ItsWritablePlaceIsPrivateAndGoneAfterwards) {
  // A root-owned file in /tmp must survive the cleanup of the run's own files there.
  const std::string bystander = "/tmp/pysandbox-rlimit-test-bystander";
  std::ofstream(bystander) << "keep";
  auto o =
      run("import os, stat\n"
          "def main():\n"
          "    cwd = os.getcwd()\n"
          "    st = os.stat(cwd)\n"
          "    open('in-scratch', 'w').write('x')\n"
          "    open('/tmp/pysandbox-rlimit-test-left', 'w').write('x')\n"
          "    os.makedirs('/tmp/pysandbox-rlimit-test-dir/sub')\n"
          "    os.symlink('/etc/passwd', '/tmp/pysandbox-rlimit-test-dir/sub/link')\n"
          "    return [cwd, oct(st.st_mode & 0o7777), st.st_uid, os.environ['TMPDIR'] == cwd,\n"
          "            os.environ['HOME'] == cwd,\n"
          "            os.path.exists('/tmp/pysandbox-rlimit-test-bystander')]\n");
  ASSERT_EQ(o.status, Status::kOk) << o.message << o.stderr_data;
  const auto& r = o.result.as_array();
  const std::string cwd(r[0].as_string());
  if (namespaces()) {
    // A tmpfs of its own over /tmp: the host's /tmp is not even visible.
    EXPECT_EQ(cwd, "/tmp");
    EXPECT_EQ(r[1], "0o1777");
    EXPECT_EQ(r[2], 0);
    EXPECT_EQ(r[5], false);
  } else {
    EXPECT_EQ(cwd.rfind("/tmp/pysandbox-rlimit/srv-", 0), 0u) << cwd;
    EXPECT_EQ(r[1], "0o700");
    EXPECT_EQ(r[2], kUidBase);
    EXPECT_EQ(r[5], true);
    EXPECT_FALSE(std::filesystem::exists(cwd));
  }
  EXPECT_EQ(r[3], true);
  EXPECT_EQ(r[4], true);
  EXPECT_FALSE(std::filesystem::exists("/tmp/pysandbox-rlimit-test-left"));
  EXPECT_FALSE(std::filesystem::exists("/tmp/pysandbox-rlimit-test-dir"));
  EXPECT_TRUE(std::filesystem::exists("/etc/passwd"));
  EXPECT_TRUE(std::filesystem::exists(bystander));
  std::filesystem::remove(bystander);
}

TEST_P(RlimitExecutorTest, CannotReadRootOnlyFiles) {
  const std::string secret = "/tmp/pysandbox-rlimit-test-secret";
  { std::ofstream(secret) << "top secret"; }
  ::chmod(secret.c_str(), 0600);
  auto o =
      run("def main():\n"
          "    out = []\n"
          "    for p in ['" +
          secret +
          "', '/etc/shadow', '/root/.bash_history']:\n"
          "        try:\n"
          "            open(p).read()\n"
          "            out.append(p)\n"
          "        except OSError:\n"
          "            pass\n"
          "    return out\n");
  std::filesystem::remove(secret);
  ASSERT_EQ(o.status, Status::kOk) << o.message;
  EXPECT_EQ(boost::json::serialize(o.result), "[]");
}

TEST_P(RlimitExecutorTest, SocketIsRefusedButSocketpairWorks) {
  auto o =
      run("import socket\n"
          "def main():\n"
          "    out = []\n"
          "    for family in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX):\n"
          "        try:\n"
          "            socket.socket(family)\n"
          "            out.append('socket %d' % family)\n"
          "        except OSError as e:\n"
          "            out.append(e.errno)\n"
          "    a, b = socket.socketpair()\n"
          "    a.send(b'hi')\n"
          "    out.append(b.recv(2).decode())\n"
          "    return out\n");
  ASSERT_EQ(o.status, Status::kOk) << o.message << o.stderr_data;
  EXPECT_EQ(boost::json::serialize(o.result), R"([1,1,1,"hi"])");
}

TEST_P(RlimitExecutorTest, ConcurrentRunsHaveDistinctUidsAndCannotReachEachOther) {
  boost::asio::io_context io;
  auto executor = make_executor(io.get_executor(), *settings_);
  auto writer = boost::asio::co_spawn(
      io,
      executor->run(request("import os, time\n"
                            "def main():\n"
                            "    open('secret', 'w').write('mine')\n"
                            "    open('/tmp/rlimit-test-secret', 'w').write('mine')\n"
                            "    time.sleep(1.5)\n"
                            "    return [os.getuid(), os.getcwd()]\n",
                            10s, 256ull << 20, 0)),
      boost::asio::use_future);
  auto reader = boost::asio::co_spawn(
      io,
      executor->run(
          request("import os, signal, time\n"
                  "def main():\n"
                  "    time.sleep(0.5)\n"
                  "    got = []\n"
                  "    parent = os.path.dirname(os.getcwd())\n"
                  "    for p in [parent + '/run-1/secret', '/tmp/rlimit-test-secret']:\n"
                  "        try:\n"
                  "            got.append(open(p).read())\n"
                  "        except OSError as e:\n"
                  "            pass\n"
                  "    killed = 0\n"
                  "    for pid in os.listdir('/proc'):\n"
                  "        if pid.isdigit() and int(pid) not in (os.getpid(), os.getppid()):\n"
                  "            try:\n"
                  "                os.kill(int(pid), signal.SIGKILL)\n"
                  "                killed += 1\n"
                  "            except OSError:\n"
                  "                pass\n"
                  "    return [os.getuid(), got, killed]\n",
                  10s, 256ull << 20, 1)),
      boost::asio::use_future);
  io.run();
  auto w = writer.get();
  auto r = reader.get();
  ASSERT_EQ(w.status, Status::kOk) << w.message << w.stderr_data;
  ASSERT_EQ(r.status, Status::kOk) << r.message << r.stderr_data;
  EXPECT_EQ(w.result.as_array()[0], kUidBase);
  EXPECT_EQ(r.result.as_array()[0], kUidBase + 1);
  // Neither the writer's private directory nor its 0600 file in a shared /tmp; nothing killed.
  EXPECT_EQ(boost::json::serialize(r.result.as_array()[1]), "[]");
  EXPECT_EQ(r.result.as_array()[2], 0);
  std::filesystem::remove("/tmp/rlimit-test-secret");
}

TEST_P(RlimitExecutorTest, DescribeSaysWhatHolds) {
  boost::asio::io_context io;
  auto executor = make_executor(io.get_executor(), *settings_);
  const auto d = executor->describe();
  EXPECT_EQ(d.at("mode"), "rlimit");
  EXPECT_EQ(d.at("seccomp"), true);
  EXPECT_EQ(d.at("pidfd"), false);
  EXPECT_EQ(boost::json::serialize(d.at("namespaces")),
            namespaces() ? R"(["pid","mount","network","ipc","uts"])" : "[]");
  const auto& caps = d.at("capabilities").as_object();
  for (const char* k : {"user_ns", "pid_ns", "mount_ns", "net_ns", "clone3", "pidfd", "pivot_root",
                        "seccomp", "cgroup_v2"}) {
    EXPECT_TRUE(caps.contains(k)) << k;
  }
  EXPECT_NE(std::string(d.at("seccomp_policy").as_string()).find("rlimit.policy"),
            std::string::npos);
}

TEST_P(RlimitExecutorTest, FloorAboveRlimitRefusesAForcedRlimit) {
  Settings s = *settings_;
  s.forced_isolation.reset();
  s.min_isolation = Isolation::kFull;
  boost::asio::io_context io;
  try {
    make_executor(io.get_executor(), s);
    FAIL() << "expected the floor to refuse";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("floor 'full'"), std::string::npos) << what;
    EXPECT_NE(what.find("Cloud Run gen2"), std::string::npos) << what;
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, RlimitExecutorTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return p.param ? "namespaces" : "plain";
                         });

}  // namespace
}  // namespace pysandbox::executor
