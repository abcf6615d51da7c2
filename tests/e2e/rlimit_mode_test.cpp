// What `rlimit` mode claims, against the real server forced into it (--isolation rlimit): on this
// host, and under gVisor through PYSANDBOX_E2E_WRAPPER (tests/gvisor/run.sh), where it is the
// mode the probe picks; with the namespaces a root server can still create there (the default)
// and without them (PYSANDBOX_RLIMIT_NAMESPACES=0 in the server's environment). Skipped when the
// server does not report rlimit.
//
// Claimed: a separate unprivileged uid per concurrent run (server runs as root), no capabilities,
// no_new_privs; a private writable place (a tmpfs over /tmp in its own mount namespace, or else
// a scratch directory of the server's, removed after the run, together with the run's files in
// the shared world-writable directories); no socket() (seccomp, when it loads); no namespace
// creation; rlimits; no process outlives the response; the server's environment stays unread.
// Not claimed: a private view of the host's files (world-readable ones are readable).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json/serialize.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "tests/e2e/http_client.hpp"
#include "tests/e2e/sandbox_uids.hpp"
#include "tests/e2e/server_process.hpp"

namespace pysandbox::e2e {
namespace {

constexpr uid_t kUidBase = 2110000;
constexpr unsigned kConcurrency = 2;
const char* kSecretEnv = "PYSANDBOX_E2E_SECRET=s3cr3t-rlimit-env";
const std::vector<std::string> kPlanted = {
    "/root/pysandbox-e2e-rlimit-secret", "/etc/pysandbox-e2e-rlimit-secret",
    "/var/tmp/pysandbox-e2e-rlimit-secret", "/tmp/pysandbox-e2e-rlimit-secret"};

class RlimitMode : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Planted before the server starts, so that a sandbox (gVisor) sees them too; root-only.
    for (const auto& p : kPlanted) {
      std::ofstream(p) << "planted-secret\n";
      ::chmod(p.c_str(), 0600);
    }
    server_ = new ServerProcess({"--isolation", "rlimit", "--uid-base", std::to_string(kUidBase),
                                 "--max-concurrency", std::to_string(kConcurrency)},
                                {kSecretEnv});
    auto doc = http(server_->port(), {.target = "/healthz"}).json();
    if (doc.is_object()) isolation_ = doc.as_object().at("isolation").as_object();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    for (const auto& p : kPlanted) ::unlink(p.c_str());
  }

  void SetUp() override {
    if (!isolation_.contains("mode") || isolation_.at("mode") != "rlimit")
      GTEST_SKIP() << "the server does not report rlimit mode";
    log_seen_ = server_->log_lines().size();
  }

  void TearDown() override {
    if (IsSkipped()) return;
    auto health = http(server_->port(), {.target = "/healthz"});
    EXPECT_EQ(health.status, 200u) << health.body;
    // The host's view (empty under gVisor, whose processes the host does not see)...
    {
      const auto left = leftover_sandbox_processes(server_->port());
      EXPECT_EQ(left, std::vector<pid_t>{}) << describe_processes(left);
    }
    // ...and the server's own: it warns when a run's uid could not be cleared or its files
    // removed.
    const auto lines = server_->log_lines();
    for (std::size_t i = log_seen_; i < lines.size(); ++i) {
      EXPECT_EQ(lines[i].find(R"("component":"rlimit")"), std::string::npos) << lines[i];
    }
  }

  static boost::json::value result_of(const std::string& script, const std::string& extra = "") {
    auto r = execute(server_->port(), script, extra);
    EXPECT_EQ(r.status, 200u) << r.body;
    auto doc = r.json();
    if (!doc.is_object() || !doc.as_object().contains("result")) return {};
    return doc.as_object().at("result");
  }

  static ServerProcess* server_;
  static boost::json::object isolation_;
  std::size_t log_seen_ = 0;
};
ServerProcess* RlimitMode::server_ = nullptr;
boost::json::object RlimitMode::isolation_;

bool result_is_pair(const boost::json::value& v) {
  return v.is_array() && v.as_array().size() == 2 && v.as_array()[0].is_string() &&
         v.as_array()[1].is_array();
}

// Every process of the sandbox uids other than the asking script itself and its run's init, as
// the sandbox sees
// /proc (under gVisor, the host's /proc does not show the sandbox's processes).
const char* kLeftoversScript = R"(
import os
def main():
    # Our own entry, in the numbering of this /proc (in a PID namespace of its own without a
    # /proc of its own, os.getpid() numbers differently).
    mine = int(os.readlink("/proc/self"))
    with open("/proc/self/status") as f:
        my_init = [int(l.split()[1]) for l in f if l.startswith("PPid:")][0]
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) in (mine, my_init):
            continue
        try:
            with open("/proc/%s/status" % pid) as f:
                st = {l.split(":")[0]: l.split(":", 1)[1].split() for l in f if ":" in l}
            uid = int(st["Uid"][0])
        except (OSError, IndexError, KeyError, ValueError):
            continue
        if BASE <= uid < BASE + COUNT:
            out.append([int(pid), uid, st["State"][0], int(st["PPid"][0])])
    return out
)";

std::string leftovers_script() {
  return "BASE = " + std::to_string(kUidBase) + "\nCOUNT = " + std::to_string(kConcurrency) + "\n" +
         kLeftoversScript;
}

TEST_F(RlimitMode, HealthzReportsRlimitWithEveryCapability) {
  std::cout << "namespaces: " << boost::json::serialize(isolation_.at("namespaces")) << std::endl;
  const auto& caps = isolation_.at("capabilities").as_object();
  for (const char* k : {"user_ns", "pid_ns", "mount_ns", "net_ns", "ipc_ns", "uts_ns", "cgroup_ns",
                        "clone3", "pidfd", "pivot_root", "seccomp", "cgroup_v2"}) {
    ASSERT_TRUE(caps.contains(k)) << k;
    EXPECT_TRUE(caps.at(k).is_bool()) << k;
  }
  EXPECT_EQ(isolation_.at("pidfd"), false);
  std::cout << "healthz isolation: " << boost::json::serialize(isolation_) << std::endl;
  // Every /execute response names the mode too.
  auto r = execute(server_->port(), "def main():\n    return 1\n");
  EXPECT_EQ(r.json().as_object().at("isolation"), "rlimit") << r.body;
}

TEST_F(RlimitMode, RunsAsAnUnprivilegedUidOfItsOwn) {
  auto result = result_of(R"(
import ctypes, os
def main():
    with open("/proc/self/status") as f:
        st = dict(l.rstrip("\n").split(":\t", 1) for l in f if ":\t" in l)
    nnp = ctypes.CDLL(None).prctl(39, 0, 0, 0, 0)  # PR_GET_NO_NEW_PRIVS
    return {"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": os.getgroups(),
            "capeff": st["CapEff"], "capprm": st["CapPrm"], "nnp": str(nnp),
            "init_leads": os.getppid() == os.getpgid(0) == os.getsid(0)}
)");
  ASSERT_TRUE(result.is_object());
  const auto& o = result.as_object();
  const auto uid = o.at("uid").as_int64();
  EXPECT_GE(uid, kUidBase);
  EXPECT_LT(uid, kUidBase + kConcurrency);
  EXPECT_EQ(o.at("euid"), uid);
  EXPECT_EQ(o.at("gid"), uid);
  EXPECT_EQ(boost::json::serialize(o.at("groups")), "[]");
  EXPECT_EQ(o.at("capeff"), "0000000000000000");
  EXPECT_EQ(o.at("capprm"), "0000000000000000");
  EXPECT_EQ(o.at("nnp"), "1");
  // Its parent is the run's init, which leads its session and process group.
  EXPECT_EQ(o.at("init_leads"), true);
}

TEST_F(RlimitMode, CannotReadRootOnlyFilesPlantedOnTheHostNorTheServersEnvironment) {
  std::string paths;
  for (const auto& p : kPlanted) paths += "\"" + p + "\", ";
  auto result = result_of("PATHS = [" + paths + R"("/etc/shadow"]
import os
def main():
    # Every process's environment this uid can see, the server's included (gVisor does not guard
    # /proc/<pid>/environ: the server blanks its own there).
    PATHS.extend("/proc/%s/environ" % p for p in os.listdir("/proc") if p.isdigit())
    found = []
    for p in PATHS:
        try:
            with open(p, "rb") as f:
                data = f.read()
        except OSError:
            continue
        if b"planted-secret" in data or b"s3cr3t" in data:
            found.append(p)
    return found
)");
  EXPECT_EQ(boost::json::serialize(result), "[]");
}

TEST_F(RlimitMode, CannotWriteOutsideItsDirectoryExceptWorldWritableOnes) {
  auto result = result_of(R"(
import os
def main():
    wrote = []
    # (The scratch root next to its own directory is writable, sticky and unlistable: what a run
    # leaves there goes with it, see FilesOfOneRequestAreGoneForTheNext.)
    for p in ["/pwned", "/usr/pwned", "/etc/pwned", "/root/pwned", "/var/pwned", "/home/pwned",
              "/usr/lib/python3/dist-packages/pwned.py", "/dev/pwned", "/proc/pwned"]:
        try:
            with open(p, "w") as f:
                f.write("x")
            wrote.append(p)
        except OSError:
            pass
    with open("here", "w") as f:
        f.write("the scratch directory is writable")
    return wrote
)");
  EXPECT_EQ(boost::json::serialize(result), "[]");
  for (const char* p : {"/pwned", "/usr/pwned", "/etc/pwned"}) EXPECT_NE(::access(p, F_OK), 0) << p;
}

TEST_F(RlimitMode, FilesOfOneRequestAreGoneForTheNext) {
  auto first = result_of(R"(
import os
def main():
    wrote = []
    for p in ("scratch-file", os.environ["TMPDIR"] + "/tmpdir-file", "/tmp/pysandbox-e2e-left",
              "/var/tmp/pysandbox-e2e-left", "/dev/shm/pysandbox-e2e-left",
              os.path.dirname(os.getcwd()) + "/pysandbox-e2e-left"):
        try:
            with open(p, "w") as f:
                f.write("left behind")
            os.chmod(p, 0o644)
            wrote.append(os.path.abspath(p))
        except OSError:
            pass  # not world-writable here (gVisor's /dev/shm)
    os.makedirs("/tmp/pysandbox-e2e-left-dir/a/b")
    return [os.getcwd(), wrote]
)");
  ASSERT_TRUE(result_is_pair(first));
  const std::string cwd(first.as_array()[0].as_string());
  std::string paths = "\"/tmp/pysandbox-e2e-left-dir\", ";
  for (const auto& p : first.as_array()[1].as_array()) paths += boost::json::serialize(p) + ", ";
  // A scratch directory of the server's must be gone; a private /tmp is a fresh one anyway.
  if (cwd != "/tmp") paths += boost::json::serialize(boost::json::value(cwd)) + ", ";
  auto second = result_of("import os\nPATHS = [" + paths + R"(]
def main():
    return [p for p in PATHS if os.path.lexists(p)]
)");
  EXPECT_EQ(boost::json::serialize(second), "[]");
  EXPECT_FALSE(std::filesystem::exists("/tmp/pysandbox-e2e-left"));
}

TEST_F(RlimitMode, AnotherRequestsFilesAreUnreachable) {
  std::thread writer([] {
    auto r = execute(server_->port(), R"(
import os, time
def main():
    for p in ("mine", "/tmp/pysandbox-e2e-concurrent", "/var/tmp/pysandbox-e2e-concurrent"):
        with open(p, "w") as f:
            f.write("private")
    time.sleep(2)
    return 1
)");
    EXPECT_EQ(r.status, 200u) << r.body;
  });
  auto result = result_of(R"(
import os, time
def main():
    time.sleep(0.7)
    mine = os.getcwd()
    parent = os.path.dirname(mine)
    candidates = ["/tmp/pysandbox-e2e-concurrent", "/var/tmp/pysandbox-e2e-concurrent"]
    # The server's scratch directories are run-1, run-2, ... next to ours (rlimit mode without a
    # mount namespace).
    candidates += [parent + "/run-%d/mine" % n for n in range(1, 30)
                   if parent + "/run-%d" % n != mine]
    got = []
    for p in candidates:
        try:
            with open(p) as f:
                got.append(p + ": " + f.read())
        except OSError:
            pass
    return got
)");
  writer.join();
  EXPECT_EQ(boost::json::serialize(result), "[]");
}

TEST_F(RlimitMode, NoProcessSurvivesTheResponseSeenFromInside) {
  auto r = execute(server_->port(), R"(
import os, time
def main():
    for _ in range(3):
        if os.fork() == 0:
            try:
                os.setsid()  # refused in the sandbox: the daemon keeps its session
            except OSError:
                pass
            if os.fork() == 0:
                for fd in (0, 1, 2):
                    os.close(fd)
                time.sleep(60)
            os._exit(0)
    return "daemons started"
)");
  EXPECT_EQ(r.status, 200u) << r.body;
  // Under gVisor the host cannot see them: ask from inside.
  EXPECT_EQ(boost::json::serialize(result_of(leftovers_script())), "[]");
}

TEST_F(RlimitMode, NoProcessSurvivesATimeout) {
  auto r = execute(server_->port(), R"(
import os, time
def main():
    if os.fork() == 0:
        try:
            os.setsid()  # refused in the sandbox: the daemon keeps its session
        except OSError:
            pass
        time.sleep(60)
    while True:
        pass
)",
                   R"("timeout_ms": 1000)");
  EXPECT_EQ(r.status, 422u) << r.body;
  EXPECT_EQ(r.json().as_object().at("error_type"), "timeout") << r.body;
  EXPECT_EQ(boost::json::serialize(result_of(leftovers_script())), "[]");
}

TEST_F(RlimitMode, NoSocketsButSocketpairWorks) {
  if (isolation_.at("seccomp") != true) GTEST_SKIP() << "seccomp does not load here";
  auto result = result_of("PORT = " + std::to_string(server_->port()) + R"(
import socket
def main():
    out = []
    for family in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX):
        try:
            socket.socket(family).close()
            out.append("socket %d" % family)
        except OSError as e:
            out.append(e.errno)
    try:
        socket.create_connection(("127.0.0.1", PORT), timeout=1)
        out.append("connected to the server")
    except OSError as e:
        out.append(e.errno)
    a, b = socket.socketpair()
    a.send(b"hi")
    out.append(b.recv(2).decode())
    return out
)");
  EXPECT_EQ(boost::json::serialize(result), R"([1,1,1,1,"hi"])");
}

TEST_F(RlimitMode, NamespacesCannotBeCreatedToEscapeTheLimits) {
  if (isolation_.at("seccomp") != true) GTEST_SKIP() << "seccomp does not load here";
  auto result = result_of(R"(
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def main():
    out = []
    for flag in (0x10000000, 0x20000000, 0x40000000, 0x00020000):  # USER, PID, NET, NS
        rc = libc.unshare(flag)
        out.append(ctypes.get_errno() if rc != 0 else "unshared %x" % flag)
    return out
)");
  EXPECT_EQ(boost::json::serialize(result), "[1,1,1,1]");
}

TEST_F(RlimitMode, NothingOutsideTheRunCanBeSignalled) {
  // Every process it can name but its run's own (its uid), the server included (TearDown checks
  // the server still answers).
  auto result = result_of(R"(
import os, signal
def main():
    sent = []
    def uid_of(pid):
        try:
            with open("/proc/%s/status" % pid) as f:
                return [int(l.split()[1]) for l in f if l.startswith("Uid:")][0]
        except (OSError, IndexError):
            return None
    # With a PID namespace but no mount namespace (gVisor), /proc is the outer one: its pids are
    # not the numbers kill() resolves (the outer pid 1, the server, is the run's own init for
    # kill). So: every number /proc shows and every small one, minus the run's own processes
    # (itself and its init, by the numbers kill() uses; anything else of its uid, by /proc).
    own = {os.getpid(), os.getppid()}
    candidates = {int(p) for p in os.listdir("/proc") if p.isdigit()} | set(range(1, 65))
    for pid in sorted(candidates - own):
        if uid_of(pid) == os.getuid():
            continue
        try:
            os.kill(pid, signal.SIGKILL)
            sent.append(pid)
        except OSError:
            pass
    return sent
)");
  EXPECT_EQ(boost::json::serialize(result), "[]");
}

TEST_F(RlimitMode, LimitsHold) {
  auto result = result_of(R"(
import resource, os
def main():
    limits = {name: resource.getrlimit(getattr(resource, "RLIMIT_" + name))[0]
              for name in ("AS", "NPROC", "NOFILE", "FSIZE", "CORE", "CPU")}
    try:
        with open("big", "wb") as f:
            f.write(b"\0" * (65 << 20))
        limits["big_file"] = "written"
    except OSError as e:
        limits["big_file"] = e.errno
    return limits
)",
                          R"("memory_mb": 300, "timeout_ms": 4000)");
  ASSERT_TRUE(result.is_object());
  const auto& o = result.as_object();
  EXPECT_EQ(o.at("AS"), 300ll << 20);
  EXPECT_EQ(o.at("NPROC"), 64);
  EXPECT_EQ(o.at("NOFILE"), 256);
  EXPECT_EQ(o.at("FSIZE"), 64ll << 20);
  EXPECT_EQ(o.at("CORE"), 0);
  EXPECT_EQ(o.at("CPU"), 5);
  // EFBIG at RLIMIT_FSIZE, or ENOSPC where a private /tmp of the same size fills first.
  EXPECT_TRUE(o.at("big_file") == 27 || o.at("big_file") == 28) << o.at("big_file");
}

TEST_F(RlimitMode, FunctionalExamples) {
  EXPECT_EQ(boost::json::serialize(result_of(
                "import numpy as np, pandas as pd\ndef main():\n"
                "    df = pd.DataFrame({'a': [1, 2, 3]})\n"
                "    return {'sum': int(df.a.sum()), 'dot': float(np.arange(3) @ np.arange(3))}\n",
                R"("timeout_ms": 30000)")),
            R"({"sum":6,"dot":5E0})");
  auto exc = execute(server_->port(), "def main():\n    raise KeyError('k')\n");
  EXPECT_EQ(exc.status, 422u);
  EXPECT_EQ(exc.json().as_object().at("error_type"), "exception");
  auto syn = execute(server_->port(), "def main(:\n");
  EXPECT_EQ(syn.status, 422u);
  EXPECT_EQ(syn.json().as_object().at("error_type"), "syntax_error");
  auto mem = execute(server_->port(),
                     "def main():\n    x = []\n    while True:\n"
                     "        x.append(bytearray(16 << 20))\n",
                     R"("memory_mb": 128)");
  EXPECT_EQ(mem.status, 422u);
  EXPECT_EQ(mem.json().as_object().at("error_type"), "memory_limit") << mem.body;
}

}  // namespace
}  // namespace pysandbox::e2e
