// The warm pool (executor/zygote_pool.hpp) against the real server: zygotes come up and serve
// warm starts; nothing of one request reaches the next child of the same zygote (patched modules,
// builtins, /tmp, threads, random state); a warm child holds only its own fds and sees only its
// own PID namespace, with no capabilities; concurrent warm children are as separate as cold ones;
// a killed or wedged zygote is replaced while requests keep working; --pool=off and an empty
// --preload behave as documented.
//
// The pool exists in namespaces and full modes only: every test is skipped when /healthz reports
// rlimit mode. PYSANDBOX_E2E_ARGS is not applied here (these tests choose their own flags);
// tests/CMakeLists.txt runs the attack suite with the pool off separately.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <boost/json/serialize.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "executor/settings.hpp"
#include "tests/e2e/http_client.hpp"
#include "tests/e2e/sandbox_uids.hpp"
#include "tests/e2e/server_process.hpp"

namespace pysandbox::e2e {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

constexpr unsigned kConcurrency = 2;
constexpr unsigned kUidsPerServer = 32;

// The sandbox uids of this test process's servers. ctest runs every test as its own process, and
// with -j two of them at once: each takes a distinct range (a slot held by an flock for the life
// of the process) so that one's uid checks never see the other's sandboxes. The ranges start at
// 2120000, clear of AttackTest's (2100000) and RlimitMode's (2110000); kUidsPerServer covers
// a server's running sandboxes and those its zygotes make ahead (/healthz isolation.uids).
uid_t uid_base() {
  static const uid_t base = [] {
    for (unsigned slot = 0; slot < 100; ++slot) {
      const std::string path = "/tmp/pysandbox-e2e-pool-uids-" + std::to_string(slot) + ".lock";
      const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
      if (fd < 0) continue;
      if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
        return static_cast<uid_t>(2120000 + slot * kUidsPerServer);  // fd kept: the lock is held
      }
      ::close(fd);
    }
    return static_cast<uid_t>(2120000 + 100 * kUidsPerServer);
  }();
  return base;
}

constexpr const char* kMinimal = "minimal";
constexpr const char* kPreloaded = "numpy+pandas";  // the default --preload numpy,pandas
// Importing numpy and pandas takes ~1 s on a host and far longer under emulation.
constexpr auto kReadyWithin = std::chrono::seconds(120);

std::vector<std::string> server_args(std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"--uid-base", std::to_string(uid_base()), "--max-concurrency",
                                   std::to_string(kConcurrency)};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

json::object healthz(unsigned short port) {
  auto doc = http(port, {.target = "/healthz"}).json();
  return doc.is_object() ? doc.as_object() : json::object{};
}

std::string mode_of(unsigned short port) {
  const auto h = healthz(port);
  const auto* iso = h.if_contains("isolation");
  if (iso == nullptr || !iso->is_object()) return "";
  const auto* mode = iso->as_object().if_contains("mode");
  return mode != nullptr && mode->is_string() ? std::string(mode->as_string()) : "";
}

json::object pool_of(unsigned short port) {
  const auto h = healthz(port);
  const auto* pool = h.if_contains("pool");
  return pool != nullptr && pool->is_object() ? pool->as_object() : json::object{};
}

std::int64_t int_field(const json::object& o, const char* name) {
  const auto* v = o.if_contains(name);
  return v != nullptr && v->is_number() ? v->to_number<std::int64_t>() : -1;
}

std::vector<json::object> zygotes_of(const json::object& pool, std::string_view flavour) {
  std::vector<json::object> out;
  const auto* list = pool.if_contains("zygotes");
  if (list == nullptr || !list->is_array()) return out;
  for (const auto& z : list->as_array()) {
    if (z.is_object() && z.as_object().at("flavour").as_string() == flavour)
      out.push_back(z.as_object());
  }
  return out;
}

bool flavour_ready(const json::object& pool, std::string_view flavour) {
  for (const auto& z : zygotes_of(pool, flavour)) {
    if (z.at("state") == "ready") return true;
  }
  return false;
}

// Polls /healthz until `pred(pool)` holds or `within` passes; returns the last pool object seen
// (the caller asserts on it, so a timeout shows the state it was stuck in).
json::object wait_pool(unsigned short port, const std::function<bool(const json::object&)>& pred,
                       std::chrono::seconds within = kReadyWithin) {
  const auto deadline = Clock::now() + within;
  json::object pool = pool_of(port);
  while (!pred(pool) && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // poll interval
    pool = pool_of(port);
  }
  return pool;
}

// Both flavours' zygotes are up and each has a sandbox made ahead.
bool both_ready(const json::object& pool) {
  if (!flavour_ready(pool, kMinimal) || !flavour_ready(pool, kPreloaded)) return false;
  for (const auto* flavour : {kMinimal, kPreloaded}) {
    for (const auto& z : zygotes_of(pool, flavour))
      if (!z.contains("sandbox_ahead")) return false;
  }
  return true;
}

std::string start_of(const HttpResponse& r) {
  auto doc = r.json();
  if (!doc.is_object()) return "";
  const auto* s = doc.as_object().if_contains("start");
  return s != nullptr && s->is_string() ? std::string(s->as_string()) : "";
}

// main()'s result of a run that must have succeeded (null, with a test failure, otherwise).
json::value result_of(const HttpResponse& r) {
  EXPECT_EQ(r.status, 200u) << r.body;
  auto doc = r.json();
  if (!doc.is_object() || !doc.as_object().contains("result")) return {};
  return doc.as_object().at("result");
}

// The one zygote of a flavour (pool size 1): its pid and how many children it forked.
struct ZygoteCount {
  std::int64_t pid = -1;
  std::int64_t spawned = -1;
};
ZygoteCount zygote_count(unsigned short port, std::string_view flavour) {
  const auto list = zygotes_of(pool_of(port), flavour);
  if (list.size() != 1) return {};
  return {int_field(list[0], "pid"), int_field(list[0], "spawned")};
}

// The host's view: the parent pid of `pid` (-1 if gone).
pid_t parent_of(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("PPid:", 0) == 0) return static_cast<pid_t>(std::stol(line.substr(5)));
  }
  return -1;
}

// Host processes whose parent is `parent` and whose name starts with `comm_prefix`.
std::vector<pid_t> children_named(pid_t parent, const std::string& comm_prefix) {
  std::vector<pid_t> out;
  for (pid_t pid : processes_with_uids(0, 1)) {  // root's processes: the zygotes run as root
    std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
    std::string name;
    std::getline(comm, name);
    if (name.rfind(comm_prefix, 0) == 0 && parent_of(pid) == parent) out.push_back(pid);
  }
  return out;
}

// Sandbox code: the uid the host sees for this process (root inside maps to it).
constexpr const char* kHostUid = R"(
def host_uid():
    with open("/proc/self/uid_map") as f:
        inside, outside = [int(x) for x in f.read().split()[:2]]
    return outside + os.getuid() - inside
)";

constexpr const char* kPandasSum = R"(
import pandas as pd

def main():
    s = pd.Series([1, 2, 3])
    return {"sum": int(s.sum()), "len": len(s)}
)";

// ---------------------------------------------------------------------------------------------
// One server with the default pool (both flavours, one zygote each) for the tests that only use
// it; each test waits until both zygotes are ready.

class PoolTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new ServerProcess(server_args());
    mode_ = mode_of(server_->port());
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override {
    if (mode_ == "rlimit") GTEST_SKIP() << "rlimit mode has no warm pool";
    const auto pool = wait_pool(port(), both_ready);
    ASSERT_TRUE(both_ready(pool)) << "the zygotes did not become ready within "
                                  << kReadyWithin.count() << " s: " << json::serialize(pool);
  }

  void TearDown() override {
    if (mode_ == "rlimit") return;
    // The server answers, and no warm child outlives its response.
    auto health = http(port(), {.target = "/healthz"});
    EXPECT_EQ(health.status, 200u) << health.body;
    {
      const auto left = leftover_sandbox_processes(port());
      EXPECT_EQ(left, std::vector<pid_t>{}) << describe_processes(left);
    }
  }

  static unsigned short port() { return server_->port(); }
  static HttpResponse run(const std::string& script, const std::string& extra = "") {
    return execute(port(), script, extra);
  }

  // Runs `first` then `second` (sequentially) on the zygote of `flavour` and checks that the same
  // zygote process forked both; returns their results.
  static std::pair<json::value, json::value> same_zygote_pair(std::string_view flavour,
                                                              const std::string& first,
                                                              const std::string& second) {
    const auto before = zygote_count(port(), flavour);
    EXPECT_GT(before.pid, 0) << json::serialize(pool_of(port()));
    auto r1 = run(first);
    EXPECT_EQ(start_of(r1), "warm") << r1.body;
    auto r2 = run(second);
    EXPECT_EQ(start_of(r2), "warm") << r2.body;
    const auto after = zygote_count(port(), flavour);
    EXPECT_EQ(after.pid, before.pid) << "the zygote was replaced between the two requests";
    EXPECT_EQ(after.spawned, before.spawned + 2)
        << "both requests should have been forked by the " << flavour << " zygote";
    return {result_of(r1), result_of(r2)};
  }

  static ServerProcess* server_;
  static std::string mode_;
};
ServerProcess* PoolTest::server_ = nullptr;
std::string PoolTest::mode_;

TEST_F(PoolTest, HealthzShowsBothFlavoursReadyAndRunsStartWarm) {
  const auto pool = pool_of(port());
  EXPECT_EQ(pool.at("enabled"), true) << json::serialize(pool);
  EXPECT_EQ(int_field(pool, "ready"), 2) << json::serialize(pool);
  EXPECT_EQ(
      json::serialize(pool.at("flavours")),
      R"([{"name":"minimal","preload":[]},{"name":"numpy+pandas","preload":["numpy","pandas"]}])");
  for (const char* flavour : {kMinimal, kPreloaded}) {
    const auto list = zygotes_of(pool, flavour);
    ASSERT_EQ(list.size(), 1u) << flavour;
    const auto& z = list[0];
    EXPECT_EQ(z.at("state"), "ready");
    EXPECT_GT(int_field(z, "pid"), 0);
    EXPECT_GT(int_field(z, "rss_bytes"), 0);
    EXPECT_EQ(int_field(z, "restarts"), 0);
    EXPECT_TRUE(z.contains("preload_ms")) << json::serialize(z);
    EXPECT_FALSE(z.contains("last_error")) << json::serialize(z);
    // The zygote is the server's child, as the server's own process table shows.
    EXPECT_EQ(parent_of(static_cast<pid_t>(int_field(z, "pid"))), server_->pid()) << flavour;
    // It keeps a sandbox made ahead, whose init is the server's child too (CLONE_PARENT).
    const auto* ahead = z.if_contains("sandbox_ahead");
    ASSERT_NE(ahead, nullptr) << json::serialize(z);
    EXPECT_EQ(parent_of(static_cast<pid_t>(int_field(ahead->as_object(), "pid"))), server_->pid())
        << flavour;
  }

  const auto minimal_before = zygote_count(port(), kMinimal);
  auto trivial = run("def main():\n    return 1 + 2\n");
  EXPECT_EQ(result_of(trivial), json::value(3));
  EXPECT_EQ(start_of(trivial), "warm") << trivial.body;
  EXPECT_EQ(zygote_count(port(), kMinimal).spawned, minimal_before.spawned + 1)
      << "a script without imports is forked by the minimal zygote";

  const auto preloaded_before = zygote_count(port(), kPreloaded);
  auto pandas = run(kPandasSum);
  EXPECT_EQ(json::serialize(result_of(pandas)), R"({"sum":6,"len":3})");
  EXPECT_EQ(start_of(pandas), "warm") << pandas.body;
  EXPECT_EQ(zygote_count(port(), kPreloaded).spawned, preloaded_before.spawned + 1)
      << "a pandas script is forked by the preloaded zygote";
}

TEST_F(PoolTest, PatchedModulesBuiltinsAndSysModulesDoNotReachTheNextChild) {
  auto [first, second] = same_zygote_pair(kPreloaded, R"(
import builtins, os, sys
import numpy as np
import pandas as pd

pd.Series.sum = lambda self, *a, **k: 42
sys.modules["json"] = None
builtins.LEAK = 1

def main():
    pd.set_option("display.max_rows", 3)
    np.set_printoptions(precision=2)
    os.environ["POOL_LEAK"] = "1"
    sys.path.insert(0, "/tmp/pool-leak")
    try:
        import json
        json_ok = True
    except ImportError:
        json_ok = False
    return {"sum": pd.Series([1, 2, 3]).sum(), "leak": hasattr(builtins, "LEAK"), "json": json_ok}
)",
                                          R"(
import builtins, os, sys
import numpy as np
import pandas as pd

def main():
    import json
    return {
        "sum": int(pd.Series([1, 2, 3]).sum()),
        "leak": hasattr(builtins, "LEAK"),
        "json": json.dumps([1]),
        "max_rows": pd.get_option("display.max_rows"),
        "precision": np.get_printoptions()["precision"],
        "env": "POOL_LEAK" in os.environ,
        "path": "/tmp/pool-leak" in sys.path,
    }
)");
  // The patches took effect in the first child (or this test proves nothing)...
  EXPECT_EQ(json::serialize(first), R"({"sum":42,"leak":true,"json":false})");
  // ...and none of them in the second.
  EXPECT_EQ(json::serialize(second),
            R"({"sum":6,"leak":false,"json":"[1]","max_rows":60,"precision":8,"env":false,)"
            R"("path":false})");
}

TEST_F(PoolTest, TmpFilesDoNotReachTheNextChild) {
  auto [first, second] = same_zygote_pair(kPreloaded, R"(
import os
import pandas as pd

def main():
    with open("/tmp/pool-leak-marker", "w") as f:
        f.write("mine")
    pd.DataFrame({"a": [1]}).to_csv("/tmp/pool-leak.csv")
    return sorted(os.listdir("/tmp"))
)",
                                          R"(
import os
import pandas as pd

def main():
    return sorted(os.listdir("/tmp"))
)");
  EXPECT_EQ(json::serialize(first), R"(["pool-leak-marker","pool-leak.csv"])");
  EXPECT_EQ(json::serialize(second), "[]");
}

TEST_F(PoolTest, ConsecutiveChildrenOfAZygoteHaveTheirOwnNetworkNamespace) {
  // The next child is made while the last one runs: the zygote must have moved to another
  // network namespace before that fork (a slip there would put two live children in one).
  const char* script = R"(
import os
def main():
    return os.readlink("/proc/self/ns/net")
)";
  for (const auto flavour : {kMinimal, kPreloaded}) {
    SCOPED_TRACE(std::string(flavour));
    const std::string body =
        flavour == kPreloaded ? std::string("import pandas\n") + script : std::string(script);
    auto [first, second] = same_zygote_pair(flavour, body, body);
    ASSERT_TRUE(first.is_string()) << first;
    EXPECT_NE(json::serialize(first), json::serialize(second));
  }
}

TEST_F(PoolTest, ANetworkNamespaceIsReusedOnlyOnceItsSandboxIsGone) {
  // Network namespaces are handed back and reused (README, "Warm pool"), never while a sandbox
  // of theirs lives. One run holds its sandbox for a while; short runs go meanwhile and after.
  // Every short run that overlapped the long one must be in another namespace; the short runs,
  // one after the other, reuse each other's.
  const char* script = R"(
import os, time
def main():
    start = time.time()
    time.sleep(%s)
    return {"netns": os.readlink("/proc/self/ns/net"), "start": start, "end": time.time()}
)";
  const auto reused_before =
      int_field(pool_of(port()).at("network_namespaces").as_object(), "reused");
  char long_script[512], short_script[512];
  std::snprintf(long_script, sizeof long_script, script, "1.5");
  std::snprintf(short_script, sizeof short_script, script, "0");
  json::value held;
  std::thread holder([&held, &long_script] { held = result_of(run(long_script)); });
  std::vector<json::value> shorts;
  for (int i = 0; i < 12; ++i) shorts.push_back(result_of(run(short_script)));
  holder.join();
  ASSERT_TRUE(held.is_object()) << held;
  const auto interval = [](const json::value& v) {
    return std::pair(v.at("start").to_number<double>(), v.at("end").to_number<double>());
  };
  const auto [held_start, held_end] = interval(held);
  int overlapped = 0;
  std::map<std::string, int> uses;
  for (const auto& r : shorts) {
    ASSERT_TRUE(r.is_object()) << r;
    const auto [start, end] = interval(r);
    ++uses[std::string(r.at("netns").as_string())];
    if (start <= held_end && held_start <= end) {
      ++overlapped;
      EXPECT_NE(r.at("netns"), held.at("netns")) << "a live sandbox's namespace was shared";
    }
  }
  EXPECT_GT(overlapped, 0) << "no short run overlapped the long one: nothing was checked";
  EXPECT_LT(uses.size(), shorts.size()) << "no namespace was reused";
  EXPECT_GT(int_field(pool_of(port()).at("network_namespaces").as_object(), "reused"),
            reused_before);
}

TEST_F(PoolTest, NothingARunLeavesInItsNetworkNamespaceReachesTheNext) {
  // A network namespace goes on to a later sandbox only if it holds no unix socket (README, "Warm
  // pool"). The first run leaves an abstract socket alive after its exit: its fd in flight inside
  // a unix socket pair that only holds itself, which lives until the kernel's garbage collector
  // runs. Any later run given that namespace while the socket lives would list it in
  // /proc/net/unix; the first run shows that the listing finds such a socket at all. (The
  // collector usually wins the race against the next sandbox: the zygote's check itself is
  // attacked deterministically by jail_tests' NetworkNamespaceTest.)
  auto first = result_of(run(R"(
import array, os, socket
def main():
    keep = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    keep.bind("\0pysandbox-left-behind")
    a, b = socket.socketpair()
    fds = array.array("i", [keep.fileno(), a.fileno(), b.fileno()])
    a.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
    with open("/proc/net/unix") as f:
        listed = "@pysandbox-left-behind" in f.read()
    keep.detach(); a.detach(); b.detach()  # leave them to the process's exit
    return {"listed_in_own_run": listed, "netns": os.readlink("/proc/self/ns/net")}
)"));
  ASSERT_TRUE(first.is_object()) << first;
  EXPECT_EQ(first.at("listed_in_own_run"), json::value(true)) << first;
  for (int i = 0; i < 4; ++i) {
    auto later = result_of(run(R"(
import os
def main():
    with open("/proc/net/unix") as f:
        text = f.read()
    return {"listed": "pysandbox-left-behind" in text, "netns": os.readlink("/proc/self/ns/net")}
)"));
    ASSERT_TRUE(later.is_object()) << later;
    EXPECT_EQ(later.at("listed"), json::value(false)) << later << " after " << first;
  }
}

TEST_F(PoolTest, ConcurrentWarmChildrenCannotConnectToEachOthersAbstractSockets) {
  // Abstract Unix sockets live in the network namespace: a listener in one child must be
  // unreachable from a concurrent child of the same zygote. No sleeping to line them up: the
  // connector keeps trying, both report wall-clock times, and the test checks that attempts
  // were made while the listener was bound.
  HttpResponse listener;
  std::thread listener_thread([&listener] {
    listener = run(R"(
import socket, time
def main():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind("\0pysandbox-pool-test")
    s.listen(1)
    bound_at = time.time()
    s.settimeout(2.5)
    try:
        s.accept()
        accepted = True
    except socket.timeout:
        accepted = False
    return {"bound_at": bound_at, "until": time.time(), "accepted": accepted}
)");
  });
  auto connector = run(R"(
import socket, time
def main():
    attempts = []
    end = time.time() + 2.0
    while time.time() < end:
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            c.connect("\0pysandbox-pool-test")
            attempts.append([time.time(), "connected"])
        except OSError as e:
            attempts.append([time.time(), type(e).__name__])
        c.close()
        time.sleep(0.05)
    return attempts
)");
  listener_thread.join();
  EXPECT_EQ(start_of(listener), "warm") << listener.body;
  EXPECT_EQ(start_of(connector), "warm") << connector.body;
  const auto l = result_of(listener);
  const auto attempts = result_of(connector);
  ASSERT_TRUE(l.is_object()) << listener.body;
  ASSERT_TRUE(attempts.is_array()) << connector.body;
  EXPECT_EQ(l.at("accepted"), json::value(false));
  const double bound_at = l.at("bound_at").to_number<double>();
  const double until = l.at("until").to_number<double>();
  int while_bound = 0;
  for (const auto& a : attempts.as_array()) {
    EXPECT_EQ(a.at(1), json::value("ConnectionRefusedError")) << json::serialize(attempts);
    const double t = a.at(0).to_number<double>();
    while_bound += t > bound_at && t < until;
  }
  EXPECT_GT(while_bound, 0) << "no attempt overlapped the listener: " << listener.body;
}

TEST_F(PoolTest, ThreadsDoNotReachTheNextChild) {
  auto [first, second] = same_zygote_pair(kPreloaded, R"(
import os, threading, time
import pandas as pd

def main():
    for _ in range(3):
        threading.Thread(target=time.sleep, args=(60,)).start()  # not daemon
    return {"threads": threading.active_count(), "tasks": len(os.listdir("/proc/self/task"))}
)",
                                          R"(
import os, threading
import pandas as pd

def main():
    return {"threads": threading.active_count(), "tasks": len(os.listdir("/proc/self/task"))}
)");
  EXPECT_EQ(json::serialize(first), R"({"threads":4,"tasks":4})");
  EXPECT_EQ(json::serialize(second), R"({"threads":1,"tasks":1})");
}

TEST_F(PoolTest, RandomStateIsNotSharedBetweenChildrenOfTheSameZygote) {
  const std::string script = R"(
import os, random
import numpy as np

def main():
    return [float(np.random.rand()), random.random(), os.urandom(8).hex(),
            float(np.random.default_rng().random())]
)";
  auto [first, second] = same_zygote_pair(kPreloaded, script, script);
  ASSERT_TRUE(first.is_array() && second.is_array());
  ASSERT_EQ(first.as_array().size(), 4u);
  ASSERT_EQ(second.as_array().size(), 4u);
  const char* names[] = {"np.random.rand()", "random.random()", "os.urandom(8)",
                         "np.random.default_rng()"};
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_NE(first.as_array()[i], second.as_array()[i])
        << names[i] << " gave the same value in two children: " << json::serialize(first);
  }
}

TEST_F(PoolTest, RandomStateIsNotSharedInTheMinimalFlavour) {
  const std::string script = R"(
import os, random

def main():
    return [random.random(), os.urandom(8).hex(), random.getrandbits(64)]
)";
  auto [first, second] = same_zygote_pair(kMinimal, script, script);
  ASSERT_TRUE(first.is_array() && second.is_array());
  ASSERT_EQ(first.as_array().size(), 3u);
  ASSERT_EQ(second.as_array().size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_NE(first.as_array()[i], second.as_array()[i])
        << i << ": the same value in two children: " << json::serialize(first);
  }
}

// The child's fds: the listing's own descriptor is the one that is gone once listdir returns.
constexpr const char* kOpenFds = R"(
import os

def main():
    out = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            out[name] = os.readlink("/proc/self/fd/" + name)
        except FileNotFoundError:
            pass  # the listing's own descriptor, closed by now
    return out
)";

TEST_F(PoolTest, AWarmChildHoldsOnlyItsOwnFds) {
  for (const std::string prefix : {"", "import pandas\n"}) {
    SCOPED_TRACE(prefix.empty() ? "minimal flavour" : "preloaded flavour");
    auto r = run(prefix + kOpenFds);
    EXPECT_EQ(start_of(r), "warm") << r.body;
    const auto fds = result_of(r);
    ASSERT_TRUE(fds.is_object()) << r.body;
    const std::set<std::string> allowed = {"0", "1", "2", "3", "4"};
    for (const auto& [fd, target] : fds.as_object()) {
      EXPECT_TRUE(allowed.contains(std::string(fd)))
          << "fd " << std::string(fd) << " -> " << json::serialize(target)
          << " is open in the child; all: " << json::serialize(fds);
    }
    // stdin, stdout, stderr and the result channel are there (the script fd is closed by now).
    for (const char* fd : {"0", "1", "2", "4"}) {
      EXPECT_TRUE(fds.as_object().contains(fd)) << fd << " missing: " << json::serialize(fds);
    }
  }
}

TEST_F(PoolTest, AWarmChildSeesOnlyItsOwnPidNamespace) {
  const std::string zygote_pid = std::to_string(zygote_count(port(), kPreloaded).pid);
  const std::string server_pid = std::to_string(server_->pid());
  for (const std::string prefix : {"", "import pandas\n"}) {
    SCOPED_TRACE(prefix.empty() ? "minimal flavour" : "preloaded flavour");
    auto r = run(prefix + R"(
import os, signal

def main():
    out = {
        "pids": sorted(n for n in os.listdir("/proc") if n.isdigit()),
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "signalled": [],
    }
    for target in ()" +
                 zygote_pid + ", " + server_pid + R"():
        try:
            os.kill(target, 0)
            out["signalled"].append(target)
        except OSError:
            pass
    return out
)");
    EXPECT_EQ(start_of(r), "warm") << r.body;
    // Its init (1) and itself (2): nothing of the host, the zygote or the server.
    EXPECT_EQ(json::serialize(result_of(r)),
              R"({"pids":["1","2"],"pid":2,"ppid":1,"signalled":[]})");
  }
}

// The cold path's guarantees, checked on the warm one: a forked child never passes through execve,
// so whatever execve would have dropped must have been dropped explicitly.
TEST_F(PoolTest, AWarmChildHasNoCapabilitiesAndRunsUnderSeccompWithNoNewPrivs) {
  for (const std::string prefix : {"", "import pandas\n"}) {
    SCOPED_TRACE(prefix.empty() ? "minimal flavour" : "preloaded flavour");
    auto r = run(prefix + R"py(
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)

def main():
    status = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key.startswith("Cap") or key in ("NoNewPrivs", "Seccomp"):
                status[key] = value.strip()
    attempts = {
        "mount": libc.mount(b"none", b"/tmp", b"tmpfs", 0, None),
        "unshare_user": libc.unshare(0x10000000),
        "chroot": libc.chroot(b"/tmp"),
        "sethostname": libc.sethostname(b"pwned", 5),
    }
    status["succeeded"] = sorted(k for k, rc in attempts.items() if rc == 0)
    return status
)py");
    EXPECT_EQ(start_of(r), "warm") << r.body;
    EXPECT_EQ(json::serialize(result_of(r)),
              R"({"CapInh":"0000000000000000","CapPrm":"0000000000000000",)"
              R"("CapEff":"0000000000000000","CapBnd":"0000000000000000",)"
              R"("CapAmb":"0000000000000000","NoNewPrivs":"1","Seccomp":"2","succeeded":[]})");
  }
}

TEST_F(PoolTest, ConcurrentWarmChildrenRunAsDistinctHostUidsAndCannotSignalEachOther) {
  HttpResponse victim;
  std::thread victim_thread([&victim] {
    victim = run(std::string("import os, time\n") + kHostUid + R"(
def main():
    time.sleep(4)
    return {"uid": host_uid(), "alive": True}
)");
  });
  struct Joiner {
    std::thread& t;
    ~Joiner() {
      if (t.joinable()) t.join();
    }
  } joiner{victim_thread};

  // Wait until the host sees the victim as a sandbox process: then the attacker surely runs while
  // it does (it sleeps for seconds).
  std::vector<pid_t> sandboxed;
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (sandboxed.size() < 2 && Clock::now() < deadline) {
    sandboxed = leftover_sandbox_processes(port());
    if (sandboxed.size() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // Its init and its runner.
  ASSERT_EQ(sandboxed.size(), 2u) << "the victim's sandbox never appeared on the host";
  // CLONE_PARENT: the server, not the zygote, is the parent of the warm sandbox's init.
  const pid_t init = parent_of(sandboxed[0]) == server_->pid() ? sandboxed[0] : sandboxed[1];
  EXPECT_EQ(parent_of(init), server_->pid());
  const pid_t runner = init == sandboxed[0] ? sandboxed[1] : sandboxed[0];
  EXPECT_EQ(parent_of(runner), init);

  auto attacker = run(std::string("import os, signal\n") + kHostUid + R"py(
def main():
    hits = []
    try:
        os.kill(-1, signal.SIGKILL)
        hits.append("kill(-1)")
    except OSError:
        pass
    for pid in range(2, 5000):
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, signal.SIGKILL)
            hits.append(pid)
        except OSError:
            pass
    try:
        os.kill(HOST_PID, signal.SIGKILL)
        hits.append("host pid")
    except OSError:
        pass
    return {"uid": host_uid(), "hits": hits}
    try:
        os.kill(HOST_INIT, signal.SIGKILL)
        hits.append("host init")
    except OSError:
        pass
)py" + "HOST_PID = " + std::to_string(runner) +
                      "\nHOST_INIT = " + std::to_string(init) + "\n");
  victim_thread.join();

  EXPECT_EQ(start_of(attacker), "warm") << attacker.body;
  EXPECT_EQ(start_of(victim), "warm") << victim.body;
  const auto a = result_of(attacker);
  const auto v = result_of(victim);
  ASSERT_TRUE(a.is_object() && v.is_object()) << attacker.body << "\n" << victim.body;
  EXPECT_EQ(json::serialize(a.at("hits")), "[]");
  EXPECT_EQ(v.at("alive"), true);
  const auto uid_a = a.at("uid").to_number<std::int64_t>();
  const auto uid_v = v.at("uid").to_number<std::int64_t>();
  EXPECT_NE(uid_a, uid_v) << "two concurrent warm children share a host uid";
  for (auto uid : {uid_a, uid_v}) {
    EXPECT_GE(uid, uid_base());
    EXPECT_LT(uid, uid_base() + kUidsPerServer);
  }
}

TEST_F(PoolTest, SimultaneousRequestsForOneZygoteAllStartWarm) {
  // More requests than sandboxes, all for the one preloaded zygote: some queue for admission,
  // some wait for the zygote to finish a fork; every one is forked by it.
  constexpr int kRequests = 4;
  const auto before = zygote_count(port(), kPreloaded);
  std::vector<HttpResponse> responses(kRequests);
  {
    std::vector<std::jthread> threads;
    for (int i = 0; i < kRequests; ++i) {
      threads.emplace_back([&responses, i] {
        responses[i] = run("import pandas as pd\ndef main():\n    return int(pd.Series([" +
                           std::to_string(i) + ", 1]).sum())\n");
      });
    }
  }
  for (int i = 0; i < kRequests; ++i) {
    EXPECT_EQ(result_of(responses[i]), json::value(i + 1)) << responses[i].body;
    EXPECT_EQ(start_of(responses[i]), "warm") << responses[i].body;
  }
  const auto after = zygote_count(port(), kPreloaded);
  EXPECT_EQ(after.pid, before.pid);
  EXPECT_EQ(after.spawned, before.spawned + kRequests);
}

TEST_F(PoolTest, ATimeoutOnTheWarmPathIsATimeout) {
  for (const std::string prefix : {"", "import pandas\n"}) {
    SCOPED_TRACE(prefix.empty() ? "minimal flavour" : "preloaded flavour");
    auto r = run(prefix + "def main():\n    while True:\n        pass\n", R"("timeout_ms": 500)");
    EXPECT_EQ(r.status, 422u) << r.body;
    auto doc = r.json();
    ASSERT_TRUE(doc.is_object()) << r.body;
    EXPECT_EQ(doc.as_object().at("error_type"), "timeout") << r.body;
    EXPECT_EQ(start_of(r), "warm") << r.body;
  }
  // The zygotes are unaffected by their children's fate.
  const auto pool = pool_of(port());
  EXPECT_TRUE(both_ready(pool)) << json::serialize(pool);
  EXPECT_EQ(int_field(pool, "restarts"), 0) << json::serialize(pool);
}

TEST_F(PoolTest, ScriptErrorsOnTheWarmPathAreReportedAsOnTheColdPath) {
  auto exc = run("import pandas\ndef main():\n    return 1 / 0\n");
  EXPECT_EQ(exc.status, 422u) << exc.body;
  EXPECT_EQ(start_of(exc), "warm") << exc.body;
  EXPECT_EQ(exc.json().as_object().at("error_type"), "exception") << exc.body;
  EXPECT_NE(exc.body.find("ZeroDivisionError"), std::string::npos) << exc.body;

  auto syntax = run("def main(:\n");
  EXPECT_EQ(syntax.status, 422u) << syntax.body;
  EXPECT_EQ(syntax.json().as_object().at("error_type"), "syntax_error") << syntax.body;

  auto exit_early = run("import os\ndef main():\n    os._exit(3)\n");
  EXPECT_EQ(exit_early.status, 422u) << exit_early.body;
  EXPECT_EQ(start_of(exit_early), "warm") << exit_early.body;
  EXPECT_NE(exit_early.body.find("exited with status 3"), std::string::npos) << exit_early.body;
}

// ---------------------------------------------------------------------------------------------
// Servers of their own.

TEST(PoolRestart, AKilledZygoteIsReplacedAndRequestsKeepWorking) {
  ServerProcess server(server_args());
  if (mode_of(server.port()) == "rlimit") GTEST_SKIP() << "rlimit mode has no warm pool";
  const auto ready = wait_pool(server.port(), both_ready);
  ASSERT_TRUE(both_ready(ready)) << json::serialize(ready);

  const std::int64_t old_minimal = zygote_count(server.port(), kMinimal).pid;
  const std::int64_t old_preloaded = zygote_count(server.port(), kPreloaded).pid;
  ASSERT_GT(old_minimal, 0);
  ASSERT_GT(old_preloaded, 0);
  // The test runs as root on the host, like the server.
  ASSERT_EQ(::kill(static_cast<pid_t>(old_preloaded), SIGKILL), 0) << std::strerror(errno);
  ASSERT_EQ(::kill(static_cast<pid_t>(old_minimal), SIGKILL), 0) << std::strerror(errno);

  // Right after the kill: whether the server has noticed yet or not, requests succeed, warm (a
  // zygote already restarted) or cold.
  auto pandas = execute(server.port(), kPandasSum);
  EXPECT_EQ(json::serialize(result_of(pandas)), R"({"sum":6,"len":3})");
  const std::string start = start_of(pandas);
  EXPECT_TRUE(start == "warm" || start == "cold") << pandas.body;
  auto trivial = execute(server.port(), "def main():\n    return 'still here'\n");
  EXPECT_EQ(result_of(trivial), json::value("still here"));

  EXPECT_NE(server.wait_for_log("killed by signal 9", 30000), "")
      << "no zygote_exit line for the killed zygotes";

  const std::vector<std::pair<const char*, std::int64_t>> killed = {{kMinimal, old_minimal},
                                                                    {kPreloaded, old_preloaded}};
  const auto replaced = wait_pool(server.port(), [&](const json::object& pool) {
    for (const auto& [flavour, old] : killed) {
      const auto list = zygotes_of(pool, flavour);
      if (list.size() != 1) return false;
      const auto& z = list[0];
      if (z.at("state") != "ready" || int_field(z, "pid") == old || int_field(z, "restarts") < 1)
        return false;
    }
    return true;
  });
  for (const auto& [flavour, old] : killed) {
    const auto list = zygotes_of(replaced, flavour);
    ASSERT_EQ(list.size(), 1u) << json::serialize(replaced);
    EXPECT_EQ(list[0].at("state"), "ready") << flavour << ": " << json::serialize(replaced);
    EXPECT_NE(int_field(list[0], "pid"), old) << flavour;
    EXPECT_GE(int_field(list[0], "restarts"), 1) << flavour;
    EXPECT_EQ(parent_of(static_cast<pid_t>(int_field(list[0], "pid"))), server.pid()) << flavour;
    // The server reaped the killed one (its pidfd): no zombie is left.
    EXPECT_NE(parent_of(static_cast<pid_t>(old)), server.pid()) << flavour << " not reaped";
  }
  EXPECT_GE(int_field(replaced, "restarts"), 2) << json::serialize(replaced);

  // And the replacements serve warm again.
  auto after = execute(server.port(), kPandasSum);
  EXPECT_EQ(json::serialize(result_of(after)), R"({"sum":6,"len":3})");
  EXPECT_EQ(start_of(after), "warm") << after.body;
  {
    const auto left = leftover_sandbox_processes(server.port());
    EXPECT_EQ(left, std::vector<pid_t>{}) << describe_processes(left);
  }
}

TEST(PoolRestart, AWedgedZygoteIsReplacedAndRequestsNeverWaitForIt) {
  ServerProcess server(server_args());
  if (mode_of(server.port()) == "rlimit") GTEST_SKIP() << "rlimit mode has no warm pool";
  // Every sandbox it keeps ahead made, none under way.
  const auto all_ahead = [](const json::object& pool) {
    if (!both_ready(pool)) return false;
    for (const auto& z : zygotes_of(pool, kPreloaded)) {
      if (z.at("sandboxes_ahead_uids").as_array().size() != executor::kAheadPerZygote ||
          !z.at("sandboxes_making_uids").as_array().empty()) {
        return false;
      }
    }
    return true;
  };
  const auto ready = wait_pool(server.port(), all_ahead);
  ASSERT_TRUE(all_ahead(ready)) << json::serialize(ready);
  const std::int64_t wedged = zygote_count(server.port(), kPreloaded).pid;
  ASSERT_GT(wedged, 0);
  // Stopped, it cannot make its next sandbox. The sandboxes it made ahead still serve the first
  // requests warm; the next one does not wait for the zygote (beyond a short bound) but runs
  // cold; and the server replaces the zygote once it misses its prefork timeout.
  ASSERT_EQ(::kill(static_cast<pid_t>(wedged), SIGSTOP), 0) << std::strerror(errno);
  for (unsigned i = 0; i < executor::kAheadPerZygote; ++i) {
    auto first = execute(server.port(), kPandasSum);
    EXPECT_EQ(json::serialize(result_of(first)), R"({"sum":6,"len":3})");
    EXPECT_EQ(start_of(first), "warm") << first.body;
  }
  auto second = execute(server.port(), kPandasSum);
  EXPECT_EQ(json::serialize(result_of(second)), R"({"sum":6,"len":3})");
  EXPECT_EQ(start_of(second), "cold") << second.body;
  EXPECT_NE(server.wait_for_log("zygote_wedged", 30000), "");

  const auto replaced = wait_pool(server.port(), [&](const json::object& pool) {
    const auto list = zygotes_of(pool, kPreloaded);
    return list.size() == 1 && list[0].at("state") == "ready" &&
           int_field(list[0], "pid") != wedged && list[0].contains("sandbox_ahead");
  });
  const auto list = zygotes_of(replaced, kPreloaded);
  ASSERT_EQ(list.size(), 1u) << json::serialize(replaced);
  EXPECT_EQ(list[0].at("state"), "ready") << json::serialize(replaced);
  EXPECT_NE(int_field(list[0], "pid"), wedged);
  EXPECT_GE(int_field(list[0], "restarts"), 1);
  EXPECT_NE(parent_of(static_cast<pid_t>(wedged)), server.pid()) << "the wedged zygote lingers";

  auto after = execute(server.port(), kPandasSum);
  EXPECT_EQ(json::serialize(result_of(after)), R"({"sum":6,"len":3})");
  EXPECT_EQ(start_of(after), "warm") << after.body;
  {
    const auto left = leftover_sandbox_processes(server.port());
    EXPECT_EQ(left, std::vector<pid_t>{}) << describe_processes(left);
  }
}

TEST(PoolFault, AZygoteDyingBeforeItReportsASandboxFailsNoRequest) {
  // Fault injection: each zygote exits right after making its every 3rd sandbox, before it
  // reports it. That sandbox is a child of the server nobody owns: the server must kill it, and
  // only it, while other zygotes' sandboxes (made, reported or being handed a run) are requests'
  // own. Every request succeeds, warm or cold.
  ServerProcess server(server_args(), {"PYSANDBOX_TEST_ZYGOTE_FAULT_EVERY=3"});
  if (mode_of(server.port()) == "rlimit") GTEST_SKIP() << "rlimit mode has no warm pool";
  const auto ready = wait_pool(server.port(), both_ready);
  ASSERT_TRUE(both_ready(ready)) << json::serialize(ready);
  constexpr int kPerThread = 12;
  std::vector<HttpResponse> responses(2 * kPerThread);
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          const int n = t * kPerThread + i;
          const std::string prefix = n % 2 == 0 ? "import pandas\n" : "";
          responses[n] =
              execute(server.port(), prefix + "def main():\n    return " + std::to_string(n));
        }
      });
    }
  }
  for (int n = 0; n < 2 * kPerThread; ++n) {
    EXPECT_EQ(responses[n].status, 200u) << n << ": " << responses[n].body;
    EXPECT_EQ(result_of(responses[n]), json::value(n)) << responses[n].body;
  }
  EXPECT_NE(server.wait_for_log("orphan_reaped", 30000), "")
      << "no unreported sandbox was swept: the fault did not happen";
  const auto settled = wait_pool(server.port(), both_ready);
  EXPECT_TRUE(both_ready(settled)) << json::serialize(settled);
  EXPECT_GE(int_field(settled, "restarts"), 2) << json::serialize(settled);
  const auto left = leftover_sandbox_processes(server.port());
  EXPECT_EQ(left, std::vector<pid_t>{}) << describe_processes(left);
}

TEST(PoolRestart, AFileReplacedOnTheHostReachesWarmSandboxesToo) {
  // A zygote binds single files of the sandbox's root once; a host update replaces such files by
  // rename (ldconfig, package managers). A warm sandbox must then see the new one, as a cold one
  // does.
  const std::string path = "/var/tmp/pysandbox-e2e-bound-" + std::to_string(::getpid()) + ".txt";
  { std::ofstream(path) << "before"; }
  struct Remove {
    std::string path;
    ~Remove() { ::unlink(path.c_str()); }
  } remove{path};
  ServerProcess server(server_args({"--extra-ro-paths", path}));
  if (mode_of(server.port()) == "rlimit") GTEST_SKIP() << "rlimit mode has no warm pool";
  const auto ready = wait_pool(server.port(), both_ready);
  ASSERT_TRUE(both_ready(ready)) << json::serialize(ready);
  const std::string script = "def main():\n    return open(" + quote(path) + ").read()\n";
  auto first = execute(server.port(), script);
  EXPECT_EQ(result_of(first), json::value("before"));
  EXPECT_EQ(start_of(first), "warm") << first.body;

  { std::ofstream(path + ".new") << "after"; }
  ASSERT_EQ(::rename((path + ".new").c_str(), path.c_str()), 0) << std::strerror(errno);
  auto second = execute(server.port(), script);
  EXPECT_EQ(result_of(second), json::value("after")) << second.body;
  const auto replaced = wait_pool(server.port(), both_ready);
  ASSERT_TRUE(both_ready(replaced)) << json::serialize(replaced);
  auto third = execute(server.port(), script);
  EXPECT_EQ(result_of(third), json::value("after")) << third.body;
  EXPECT_EQ(start_of(third), "warm") << third.body;
}

TEST(PoolOff, EveryRunStartsColdAndHealthzSaysWhy) {
  ServerProcess server(server_args({"--pool=off"}));
  if (mode_of(server.port()) == "rlimit") GTEST_SKIP() << "rlimit mode has no warm pool";
  const auto pool = pool_of(server.port());
  EXPECT_EQ(pool.at("enabled"), false) << json::serialize(pool);
  const auto* reason = pool.if_contains("reason");
  ASSERT_NE(reason, nullptr) << json::serialize(pool);
  ASSERT_TRUE(reason->is_string()) << json::serialize(pool);
  EXPECT_NE(std::string(reason->as_string()).find("pool"), std::string::npos)
      << json::serialize(pool);
  EXPECT_FALSE(pool.contains("zygotes")) << json::serialize(pool);
  EXPECT_EQ(children_named(server.pid(), "python3"), std::vector<pid_t>{})
      << "a zygote runs although the pool is off";

  auto trivial = execute(server.port(), "def main():\n    return 1 + 2\n");
  EXPECT_EQ(result_of(trivial), json::value(3));
  EXPECT_EQ(start_of(trivial), "cold") << trivial.body;
  auto pandas = execute(server.port(), kPandasSum);
  EXPECT_EQ(json::serialize(result_of(pandas)), R"({"sum":6,"len":3})");
  EXPECT_EQ(start_of(pandas), "cold") << pandas.body;
  auto timeout = execute(server.port(), "def main():\n    while True:\n        pass\n",
                         R"("timeout_ms": 500)");
  EXPECT_EQ(timeout.status, 422u) << timeout.body;
  EXPECT_EQ(start_of(timeout), "cold") << timeout.body;
}

TEST(PoolPreload, AnEmptyPreloadKeepsOnlyMinimalZygotesWhichStillServePandas) {
  ServerProcess server(server_args({"--preload", "", "--pool-size", "2"}));
  if (mode_of(server.port()) == "rlimit") GTEST_SKIP() << "rlimit mode has no warm pool";
  auto pool = pool_of(server.port());
  EXPECT_EQ(pool.at("enabled"), true) << json::serialize(pool);
  EXPECT_EQ(json::serialize(pool.at("flavours")), R"([{"name":"minimal","preload":[]}])");
  ASSERT_EQ(pool.at("zygotes").as_array().size(), 2u) << json::serialize(pool);
  EXPECT_EQ(zygotes_of(pool, kMinimal).size(), 2u) << json::serialize(pool);

  pool = wait_pool(server.port(), [](const json::object& p) { return int_field(p, "ready") == 2; });
  ASSERT_EQ(int_field(pool, "ready"), 2) << json::serialize(pool);

  auto pandas = execute(server.port(), kPandasSum);
  EXPECT_EQ(json::serialize(result_of(pandas)), R"({"sum":6,"len":3})");
  EXPECT_EQ(start_of(pandas), "warm") << pandas.body;
  std::int64_t spawned = 0;
  for (const auto& z : zygotes_of(pool_of(server.port()), kMinimal)) {
    spawned += int_field(z, "spawned");
  }
  EXPECT_EQ(spawned, 1) << "the pandas script was forked by a minimal zygote";
}

}  // namespace
}  // namespace pysandbox::e2e
