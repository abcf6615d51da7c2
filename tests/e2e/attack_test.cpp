// Escape attempts against the real server, each of which must fail; the server must still
// answer /healthz afterwards and no sandbox process may outlive its response.
//
// PYSANDBOX_E2E_ARGS (space-separated) adds server flags, so the same suite runs in every
// isolation mode and with the pool on or off.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json/serialize.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>

#include "tests/e2e/http_client.hpp"
#include "tests/e2e/sandbox_uids.hpp"
#include "tests/e2e/server_process.hpp"

namespace pysandbox::e2e {
namespace {

constexpr uid_t kUidBase = 2100000;
constexpr unsigned kConcurrency = 2;
const char* kSecretEnv = "PYSANDBOX_E2E_SECRET=s3cr3t-env-value";

std::vector<std::string> extra_args() {
  std::vector<std::string> out;
  if (const char* e = std::getenv("PYSANDBOX_E2E_ARGS")) {
    std::istringstream in(e);
    std::string word;
    while (in >> word) out.push_back(word);
  }
  return out;
}

class AttackTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto args = extra_args();
    for (const char* a : {"--uid-base", "2100000", "--max-concurrency", "2"}) args.push_back(a);
    server_ = new ServerProcess(args, {kSecretEnv});
    auto doc = http(server_->port(), {.target = "/healthz"}).json();
    if (doc.is_object() && doc.as_object().contains("isolation")) {
      const auto& iso = doc.as_object().at("isolation").as_object();
      mode_ = std::string(iso.at("mode").as_string());
      seccomp_ = iso.at("seccomp").as_bool();
      for (const auto& n : iso.at("namespaces").as_array()) mount_ns_ = mount_ns_ || n == "mount";
    }
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void TearDown() override {
    // After every attack: the server answers, and nothing of the sandbox survives.
    auto health = http(server_->port(), {.target = "/healthz"});
    EXPECT_EQ(health.status, 200u) << health.body;
    {
      const auto left = leftover_sandbox_processes(server_->port());
      EXPECT_EQ(left, std::vector<pid_t>{}) << describe_processes(left);
    }
  }

  static HttpResponse run(const std::string& script, const std::string& extra = "") {
    return execute(server_->port(), script, extra);
  }

  // Runs a script whose main() returns a JSON value; fails the test unless it ran OK.
  static boost::json::value result_of(const std::string& script) {
    auto r = run(script);
    EXPECT_EQ(r.status, 200u) << r.body;
    auto doc = r.json();
    if (!doc.is_object() || !doc.as_object().contains("result")) return {};
    return doc.as_object().at("result");
  }

  // rlimit mode keeps the host's root (no pivot_root: its files are guarded by permissions only;
  // without a mount namespace its /tmp is shared too) and, without seccomp, may have no network
  // restriction: tests of what it does not claim are skipped there;
  // tests/e2e/rlimit_mode_test.cpp checks what it does claim.
  static bool rlimit() { return mode_ == "rlimit"; }

  static ServerProcess* server_;
  static std::string mode_;
  static bool seccomp_;
  static bool mount_ns_;
};
ServerProcess* AttackTest::server_ = nullptr;
std::string AttackTest::mode_;
bool AttackTest::seccomp_ = true;
bool AttackTest::mount_ns_ = false;

TEST_F(AttackTest, CannotReadFilesPlantedOnTheHost) {
  if (rlimit()) {
    GTEST_SKIP() << "rlimit mode keeps the host's root: world-readable host files stay readable "
                    "(RlimitMode.CannotReadRootOnlyFilesPlantedOnTheHostNorTheServersEnvironment "
                    "checks 0600 ones)";
  }
  const std::vector<std::string> planted = {
      "/root/pysandbox-e2e-secret", "/etc/pysandbox-e2e-secret", "/var/tmp/pysandbox-e2e-secret",
      "/tmp/pysandbox-e2e-secret"};
  for (const auto& p : planted) std::ofstream(p) << "planted-secret\n";
  auto result = result_of(R"(
import os
PATHS = ["/root/pysandbox-e2e-secret", "/etc/pysandbox-e2e-secret",
         "/var/tmp/pysandbox-e2e-secret", "/tmp/pysandbox-e2e-secret",
         "/proc/1/root/root/pysandbox-e2e-secret", "/../root/pysandbox-e2e-secret"]
def main():
    found = []
    for p in PATHS:
        try:
            with open(p) as f:
                found.append(p + ": " + f.read())
        except OSError:
            pass
    for top in ("/", "/etc"):
        found += [top + n for n in os.listdir(top) if "secret" in n]
    return found
)");
  for (const auto& p : planted) ::unlink(p.c_str());
  EXPECT_EQ(boost::json::serialize(result), "[]");
}

TEST_F(AttackTest, CannotReadTheServersEnvironment) {
  auto result = result_of(R"(
import os
def main():
    leaks = [k for k, v in os.environ.items() if "s3cr3t" in v]
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/%s/environ" % pid, "rb") as f:
                    if b"s3cr3t" in f.read():
                        leaks.append(pid)
            except OSError:
                pass
    return {"leaks": leaks, "env": sorted(os.environ)}
)");
  ASSERT_TRUE(result.is_object());
  EXPECT_EQ(boost::json::serialize(result.at("leaks")), "[]");
  for (const auto& name : result.at("env").as_array()) {
    EXPECT_EQ(std::string(name.as_string()).rfind("PYSANDBOX", 0), std::string::npos) << name;
  }
}

TEST_F(AttackTest, CannotWriteOutsideTmp) {
  auto result = result_of(R"(
def main():
    wrote = []
    for p in ["/pwned", "/usr/pwned", "/etc/pwned", "/usr/lib/python3/dist-packages/pwned.py",
              "/dev/pwned", "/proc/pwned", "/root/pwned", "/home/pwned"]:
        try:
            with open(p, "w") as f:
                f.write("x")
            wrote.append(p)
        except OSError:
            pass
    with open("/tmp/ok", "w") as f:
        f.write("fine")
    return wrote
)");
  EXPECT_EQ(boost::json::serialize(result), "[]");
  for (const char* p : {"/pwned", "/usr/pwned", "/etc/pwned"}) {
    EXPECT_NE(::access(p, F_OK), 0) << p;
  }
}

TEST_F(AttackTest, CannotSeeAnotherRequestsTmpFiles) {
  if (rlimit() && !mount_ns_) {
    GTEST_SKIP() << "rlimit mode without a mount namespace shares the host's /tmp; its private "
                    "directory is $TMPDIR (RlimitMode.AnotherRequestsFilesAreUnreachable)";
  }
  // Concurrently: the writer holds its sandbox open while the reader looks.
  std::thread writer([] {
    auto r = run(R"(
import time
def main():
    with open("/tmp/e2e-marker", "w") as f:
        f.write("mine")
    time.sleep(1.5)
    return 1
)");
    EXPECT_EQ(r.status, 200u) << r.body;
  });
  auto concurrent = result_of(R"(
import os, time
def main():
    time.sleep(0.5)
    return os.listdir("/tmp")
)");
  writer.join();
  EXPECT_EQ(boost::json::serialize(concurrent), "[]");
  // And afterwards.
  EXPECT_EQ(
      boost::json::serialize(result_of("import os\ndef main():\n    return os.listdir('/tmp')\n")),
      "[]");
}

TEST_F(AttackTest, CannotConnectToTheHostsLoopback) {
  if (rlimit() && !seccomp_) {
    GTEST_SKIP() << "rlimit mode without seccomp shares the server's network";
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const std::string port = std::to_string(ntohs(addr.sin_port));
  auto result = result_of(R"(
import socket
def main():
    out = []
    for host in ("127.0.0.1", "::1", "localhost"):
        try:
            socket.create_connection((host, )" +
                          port + R"(), timeout=1).close()
            out.append("connected " + host)
        except OSError:
            pass
    return out
)");
  EXPECT_EQ(boost::json::serialize(result), "[]");
  pollfd p{fd, POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0) << "the listener got a connection";
  ::close(fd);
  // The server's own port too.
  auto own = result_of(
      "import socket\ndef main():\n    try:\n        socket.create_connection(('127.0.0.1', " +
      std::to_string(server_->port()) +
      "), timeout=1)\n        return 'connected'\n    except OSError:\n        return 'no'\n");
  EXPECT_EQ(own, boost::json::value("no"));
}

TEST_F(AttackTest, ForkBombIsContained) {
  auto r = run(R"(
import os
def main():
    while True:
        try:
            os.fork()
        except OSError:
            pass
)",
               R"("timeout_ms": 2000)");
  EXPECT_EQ(r.status, 422u) << r.body;
  const auto type = r.json().as_object().at("error_type");
  EXPECT_TRUE(type == "timeout" || type == "killed") << r.body;
}

TEST_F(AttackTest, ThreadBombIsContained) {
  auto r = run(R"(
import threading, time
def main():
    n = 0
    while True:
        try:
            threading.Thread(target=time.sleep, args=(100,), daemon=True).start()
            n += 1
        except (RuntimeError, MemoryError):
            return n
)",
               R"("timeout_ms": 3000)");
  // Either it hits a limit and returns how many it got, or the deadline ends it.
  EXPECT_TRUE(r.status == 200u || r.status == 422u) << r.body;
  if (r.status == 200u) {
    EXPECT_LT(r.json().as_object().at("result").as_int64(), 1000);
  }
}

TEST_F(AttackTest, MemoryBlowUpIsStopped) {
  auto r = run(R"(
def main():
    chunks = []
    while True:
        chunks.append(bytearray(16 * 1024 * 1024))
)",
               R"("memory_mb": 128)");
  EXPECT_EQ(r.status, 422u) << r.body;
  EXPECT_EQ(r.json().as_object().at("error_type"), "memory_limit") << r.body;
}

TEST_F(AttackTest, HundredMegabytesOfStdoutIsCut) {
  auto r = run(R"(
import sys
def main():
    block = "x" * (1024 * 1024)
    for _ in range(100):
        sys.stdout.write(block)
)");
  EXPECT_EQ(r.status, 422u) << r.body.substr(0, 300);
  auto doc = r.json().as_object();
  EXPECT_EQ(doc.at("error_type"), "output_limit");
  EXPECT_LE(doc.at("stdout").as_string().size(), 1u << 20);
}

TEST_F(AttackTest, InfiniteLoopTimesOut) {
  auto r = run("def main():\n    while True:\n        pass\n", R"("timeout_ms": 1000)");
  EXPECT_EQ(r.status, 422u);
  EXPECT_EQ(r.json().as_object().at("error_type"), "timeout") << r.body;
}

TEST_F(AttackTest, DaemonisedChildDiesWithTheResponse) {
  auto r = run(R"(
import os, time
def main():
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
    return "parent done"
)");
  EXPECT_EQ(r.status, 200u) << r.body;
  // TearDown checks that no process with a sandbox uid is left on the host.
}

TEST_F(AttackTest, PrivilegedSyscallsFailAndChangeNothing) {
  auto result = result_of(R"(
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def attempt(name, fn):
    rc = fn()
    return "%s=%s" % (name, "ok" if rc == 0 else "fail")
def main():
    out = [
        attempt("mount", lambda: libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)),
        attempt("umount", lambda: libc.umount2(b"/usr", 2)),
        attempt("unshare_user", lambda: libc.unshare(0x10000000)),
        attempt("unshare_mnt", lambda: libc.unshare(0x00020000)),
        attempt("ptrace_traceme", lambda: libc.ptrace(0, 0, None, None)),
        attempt("chroot", lambda: libc.chroot(b"/tmp")),
        attempt("sethostname", lambda: libc.sethostname(b"pwned", 5)),
    ]
    try:
        os.setuid(0)
    except OSError:
        pass
    with open("/proc/self/status") as f:
        caps = [l.split()[1] for l in f if l.startswith("CapEff")]
    with open("/proc/self/uid_map") as f:
        inside, outside = [int(x) for x in f.read().split()[:2]]
    out.append("capeff=" + caps[0])
    # The uid as the host sees it: mapped in namespaces mode, the same in rlimit mode.
    out.append("host_uid_is_root=" + str(outside + os.getuid() - inside == 0))
    return out
)");
  EXPECT_EQ(boost::json::serialize(result),
            R"(["mount=fail","umount=fail","unshare_user=fail","unshare_mnt=fail",)"
            R"("ptrace_traceme=fail","chroot=fail","sethostname=fail",)"
            R"("capeff=0000000000000000","host_uid_is_root=False"])");
}

TEST_F(AttackTest, KillAllAndKillingTheServerFail) {
  const std::string server_pid = std::to_string(server_->pid());
  auto r = run(R"(
import os, signal
def main():
    out = []
    for target in (-1, 1, )" +
               server_pid + R"(, os.getppid()):
        try:
            os.kill(target, signal.SIGKILL)
            out.append("sent %d" % target)
        except OSError as e:
            out.append("refused %d" % target)
    return out
)");
  // kill(-1) may "succeed" against the sandbox's own processes only; the server must live.
  EXPECT_TRUE(r.status == 200u || r.status == 422u) << r.body;
  EXPECT_EQ(::kill(server_->pid(), 0), 0) << "the server died";
  EXPECT_EQ(r.body.find("sent " + server_pid), std::string::npos) << r.body;
}

TEST_F(AttackTest, ConcurrentSandboxesCannotSignalEachOther) {
  // One request publishes nothing; the other tries to kill every pid it could guess. Distinct
  // PID namespaces mean it cannot even name the first.
  std::thread victim([] {
    auto r = run("import time\ndef main():\n    time.sleep(1.5)\n    return 'alive'\n");
    EXPECT_EQ(r.status, 200u) << r.body;
    EXPECT_NE(r.body.find("alive"), std::string::npos);
  });
  auto result = result_of(R"(
import os, signal, time
def main():
    time.sleep(0.3)
    hits = 0
    for pid in range(2, 5000):
        # Its own process and its own init (without a PID namespace, rlimit mode, the init's pid
        # is in this range) are its own business.
        if pid in (os.getpid(), os.getppid()):
            continue
        try:
            os.kill(pid, signal.SIGKILL)
            hits += 1
        except OSError:
            pass
    return hits
)");
  victim.join();
  EXPECT_EQ(result, boost::json::value(0));
}

TEST_F(AttackTest, OnlyTheScriptsOwnProcessAnswers) {
  // A forked child that returns from main(), raises in it, or writes to the result channel
  // (fd 4) itself must not replace the parent's answer.
  auto r = run(R"(
import os
def main():
    got = []
    for how in ("return", "raise", "write"):
        pid = os.fork()
        if pid == 0:
            if how == "raise":
                raise ValueError("from the child")
            if how == "write":
                try:
                    os.write(4, b'{"status": "ok", "result": "forged by the child"}')
                except OSError as e:
                    return "write refused: " + e.strerror
            return "the child's answer"
        _, status = os.waitpid(pid, 0)
        got.append(os.waitstatus_to_exitcode(status))
    return ["parent", got]
)");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(boost::json::serialize(r.json().as_object().at("result")), R"(["parent",[0,1,0]])")
      << r.body;
}

TEST_F(AttackTest, GarbageOnTheResultChannelIsNeverSentAsJson) {
  // The channel is the script's to write: every answer must still parse as JSON.
  // Python bytes expressions, written to fd 4 as they are.
  const std::vector<std::string> payloads = {
      R"(b'{"status": "ok", "result": [1e400]}')",
      R"(b'{"status": "ok", "result": -1e999}')",
      R"(b'{"status": "ok", "result": ' + b'7' * 5000 + b'}')",
      R"(b'{"status": "ok", "result": NaN}')",
      R"(b'{"status": "ok", "result": "\xff\xfe"}')",
      R"(b'{"status": "ok", "result": "\\ud800"}')"};
  for (const auto& payload : payloads) {
    auto r = run("import os\ndef main():\n    os.write(4, " + payload + ")\n    os._exit(0)\n");
    EXPECT_EQ(r.status, 422u) << payload << " -> " << r.body.substr(0, 300);
    const auto doc = r.json();
    ASSERT_TRUE(doc.is_object()) << "not JSON: " << r.body.substr(0, 300);
    EXPECT_EQ(doc.as_object().at("error_type"), "not_json_serializable") << payload;
  }
  // A lone surrogate returned the ordinary way is refused by name, not replaced.
  auto r = run("def main():\n    return {'text': 'a\\ud800b'}\n");
  ASSERT_EQ(r.status, 422u) << r.body;
  EXPECT_EQ(r.json().as_object().at("error_type"), "not_json_serializable");
  EXPECT_NE(r.body.find("U+D800"), std::string::npos) << r.body;
}

TEST_F(AttackTest, ConcurrentSandboxesCannotLockSharedFiles) {
  // A lock on a file every sandbox shares (the read-only /usr, the /dev nodes) would be a
  // channel between concurrent sandboxes and would block host processes that lock it.
  const std::string attempts = R"(
import fcntl, os, struct, time
def attempts():
    out = {}
    shared = os.open("/usr/lib/python3.11/os.py", os.O_RDONLY)
    null = os.open("/dev/null", os.O_RDWR)
    tries = {
        "flock_ex": lambda: fcntl.flock(shared, fcntl.LOCK_EX | fcntl.LOCK_NB),
        "flock_sh": lambda: fcntl.flock(shared, fcntl.LOCK_SH | fcntl.LOCK_NB),
        "posix_rd": lambda: fcntl.lockf(shared, fcntl.LOCK_SH | fcntl.LOCK_NB),
        "posix_wr_dev_null": lambda: fcntl.lockf(null, fcntl.LOCK_EX | fcntl.LOCK_NB),
        "getlk": lambda: fcntl.fcntl(null, fcntl.F_GETLK, struct.pack("hhqqi", 1, 0, 0, 0, 0)),
        "ofd_wr": lambda: fcntl.fcntl(null, 37, struct.pack("hhqqi", 1, 0, 0, 0, 0)),
        "lease": lambda: fcntl.fcntl(shared, fcntl.F_SETLEASE, fcntl.F_RDLCK),
    }
    for name, fn in tries.items():
        try:
            fn()
            out[name] = "granted"
        except OSError as e:
            out[name] = e.strerror
    return out
)";
  const char* refused =
      R"({"flock_ex":"Operation not permitted","flock_sh":"Operation not permitted",)"
      R"("posix_rd":"Operation not permitted","posix_wr_dev_null":"Operation not permitted",)"
      R"("getlk":"Operation not permitted","ofd_wr":"Operation not permitted",)"
      R"("lease":"Operation not permitted"})";
  std::thread holder([&] {
    auto r =
        run(attempts + "def main():\n    got = attempts()\n    time.sleep(2)\n    return got\n");
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(boost::json::serialize(r.json().as_object().at("result")), refused);
  });
  // The second sandbox runs while the first is alive (it sleeps after its attempts).
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (leftover_sandbox_processes(server_->port()).empty() &&
         std::chrono::steady_clock::now() < until) {
    std::this_thread::yield();
  }
  auto r = run(attempts + "def main():\n    return attempts()\n");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(boost::json::serialize(r.json().as_object().at("result")), refused);
  // And the host can still lock the shared file exclusively.
  const int fd = ::open("/usr/lib/python3.11/os.py", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0) << std::strerror(errno);
  ::close(fd);
  holder.join();
}

TEST_F(AttackTest, UncountedMemoryPrimitivesAreRefused) {
  // Pages no rlimit counts: memfds and SysV shared memory are refused outright; POSIX shared
  // memory lives in /dev/shm, the sandbox's size-limited /tmp.
  auto result = result_of(R"(
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def main():
    out = {}
    try:
        os.memfd_create("x")
        out["memfd"] = "created"
    except OSError as e:
        out["memfd"] = e.strerror
    shmid = libc.shmget(0, 64 << 20, 0o1600)
    out["shmget"] = "created" if shmid >= 0 else os.strerror(ctypes.get_errno())
    msq = libc.msgget(0, 0o1600)
    out["msgget"] = "created" if msq >= 0 else os.strerror(ctypes.get_errno())
    return out
)");
  EXPECT_EQ(boost::json::serialize(result),
            R"({"memfd":"Operation not permitted","shmget":"Function not implemented",)"
            R"("msgget":"Function not implemented"})");
}

TEST_F(AttackTest, ASandboxIsOneSchedulingGroupItCannotLeave) {
  // Its init made a session of its own: the kernel schedules a session's processes as one group
  // (autogroup), so forking does not buy a larger CPU share. A new session would be a new share:
  // setsid() is refused.
  auto result = result_of(R"(
import os
def main():
    try:
        with open("/proc/self/autogroup") as f:
            group = f.read().split()[0]
    except OSError:
        group = None
    try:
        os.setsid()
        refused = None
    except OSError as e:
        refused = e.strerror
    child = os.fork()
    if child == 0:
        try:
            os.setsid()
            os._exit(0)
        except OSError:
            os._exit(1)
    _, status = os.waitpid(child, 0)
    return [group, refused, os.waitstatus_to_exitcode(status)]
)");
  ASSERT_TRUE(result.is_array()) << boost::json::serialize(result);
  const auto& r = result.as_array();
  if (seccomp_) {
    EXPECT_EQ(r[1], "Operation not permitted");
    EXPECT_EQ(r[2], 1) << "a forked child could start a session of its own";
  }
  std::ifstream server_group("/proc/" + std::to_string(server_->pid()) + "/autogroup");
  std::string theirs;
  if (r[0].is_string() && (server_group >> theirs)) {
    EXPECT_NE(std::string(r[0].as_string()), theirs) << "the sandbox shares the server's group";
  }
}

// Shmem (tmpfs and memfd pages) of the whole host, in bytes.
std::uint64_t host_shmem_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::uint64_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit) {
    if (key == "Shmem:") return kib * 1024;
  }
  return 0;
}

// The script's own stdout, stderr and result pipes, parked as fds in flight in a cycle of unix
// sockets that nothing can reach once the script returns: the kernel keeps the write ends open
// until its garbage collector runs. The run must still end when its sandbox ends.
constexpr const char* kParkInCycle = R"(
import array, socket
def park(fds):
    a1, a2 = socket.socketpair()
    b1, b2 = socket.socketpair()
    rights = array.array("i", [a1.fileno(), a2.fileno(), b1.fileno(), b2.fileno()] + fds)
    try:
        a1.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)])
        b1.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)])
    except PermissionError:
        pass  # rlimit mode: no fds in flight at all
    for s in (a1, a2, b1, b2):
        s.close()
)";

TEST_F(AttackTest, PipesParkedInAnUnreachableSocketCycleDoNotHoldTheResponse) {
  const auto started = std::chrono::steady_clock::now();
  auto r = run(std::string(kParkInCycle) + R"(
def main():
    print("parked")
    park([1, 2, 4])
    return "done"
)",
               R"("timeout_ms": 3000)");
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.json().as_object().at("result"), "done");
  EXPECT_EQ(r.json().as_object().at("stdout"), "parked\n");
  // Not the deadline and not the kernel's next unrelated collection: the end of the sandbox.
  EXPECT_LT(took, std::chrono::milliseconds(2500));
}

TEST_F(AttackTest, MemoryParkedInFlightIsFreedAfterEachRun) {
  // 48 MiB of tmpfs (or memfd, where allowed) per run, kept alive by an fd in flight: ten runs
  // would pin 480 MiB of host memory past their end without a collection after each run.
  const std::string script = std::string(kParkInCycle) + R"(
import os
def main():
    block = b"z" * (1 << 20)
    try:
        fd = os.memfd_create("parked")
    except OSError:
        fd = os.open("/tmp/parked", os.O_RDWR | os.O_CREAT, 0o600)
        os.unlink("/tmp/parked")
    for _ in range(48):
        os.write(fd, block)
    park([fd, 1, 2, 4])
    return "parked"
)";
  const std::uint64_t before = host_shmem_bytes();
  for (int i = 0; i < 10; ++i) {
    auto r = run(script, R"("timeout_ms": 10000, "memory_mb": 512)");
    ASSERT_EQ(r.status, 200u) << r.body;
  }
  const std::uint64_t after = host_shmem_bytes();
  const std::int64_t grown = static_cast<std::int64_t>(after) - static_cast<std::int64_t>(before);
  std::cout << "host Shmem before " << (before >> 20) << " MiB, after " << (after >> 20)
            << " MiB\n";
  EXPECT_LT(grown, 96ll << 20) << "host Shmem grew by " << (grown >> 20) << " MiB";
}

}  // namespace
}  // namespace pysandbox::e2e
