// The front door of the real binary: what it does with scarce descriptors, clients that leave
// or do not read, signals, its own death, configuration that names missing things, and its
// log.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/e2e/http_client.hpp"
#include "tests/e2e/sandbox_uids.hpp"
#include "tests/e2e/server_process.hpp"

namespace pysandbox::e2e {
namespace {

using namespace std::chrono_literals;

// The server's default --uid-base; a test server runs at most this many sandboxes at once.
constexpr uid_t kUidBase = 2000000;
constexpr unsigned kUidCount = 64;

// Waits (bounded) until `predicate` holds, polling the server or /proc.
bool eventually(const std::function<bool()>& predicate,
                std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!predicate()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

boost::json::object healthz(unsigned short port) {
  auto doc = http(port, {.target = "/healthz"}, 5000).json();
  return doc.is_object() ? doc.as_object() : boost::json::object{};
}

std::int64_t admission_field(unsigned short port, const char* name) {
  const auto h = healthz(port);
  const auto* a = h.if_contains("admission");
  if (a == nullptr || !a->is_object()) return -1;
  const auto* v = a->as_object().if_contains(name);
  return v != nullptr && v->is_int64() ? v->as_int64() : -1;
}

// The value of one /metrics series (labels included), or -1.
double metric(unsigned short port, const std::string& series) {
  const std::string text = http(port, {.target = "/metrics"}, 5000).body;
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

HttpRequest post_execute(const std::string& script, const std::string& extra = "") {
  HttpRequest r;
  r.method = "POST";
  r.target = "/execute";
  r.headers["Content-Type"] = "application/json";
  r.body = "{\"script\": " + quote(script) + (extra.empty() ? "" : ", " + extra) + "}";
  return r;
}

// A raw loopback connection (the tests need to close it, half-read it, or not read it).
class RawSocket {
 public:
  explicit RawSocket(unsigned short port, int receive_buffer = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (receive_buffer > 0) {
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~RawSocket() { close(); }
  RawSocket(const RawSocket&) = delete;
  RawSocket& operator=(const RawSocket&) = delete;

  bool connected() const { return connected_; }
  bool send(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

std::string raw_execute(const std::string& script, const std::string& extra = "") {
  const std::string body = post_execute(script, extra).body;
  return "POST /execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::vector<pid_t> zygote_pids(unsigned short port) {
  std::vector<pid_t> out;
  const auto h = healthz(port);
  const auto* pool = h.if_contains("pool");
  if (pool == nullptr || !pool->is_object()) return out;
  const auto* zygotes = pool->as_object().if_contains("zygotes");
  if (zygotes == nullptr || !zygotes->is_array()) return out;
  for (const auto& z : zygotes->as_array()) {
    const auto* pid = z.as_object().if_contains("pid");
    if (pid != nullptr && pid->is_int64() && pid->as_int64() > 0) {
      out.push_back(static_cast<pid_t>(pid->as_int64()));
    }
  }
  return out;
}

// Alive and not a zombie.
bool running(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const auto paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] != 'Z';
}

// kB of a /proc/<pid>/status field (VmRSS, VmHWM).
long status_kb(pid_t pid, const std::string& field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

// --- Nothing outlives the server -------------------------------------------------------------

class ServerDeath : public ::testing::TestWithParam<std::vector<std::string>> {};

// kill -9 of the server while a sandbox sleeps far past the test: the sandbox (and every
// zygote) must be gone within seconds (PR_SET_PDEATHSIG in the jail and the zygote).
TEST_P(ServerDeath, KillNineLeavesNoSandboxOrZygoteBehind) {
  std::vector<std::string> args = GetParam();
  args.insert(args.end(), {"--max-concurrency", "2"});
  ServerProcess server(args);
  const auto port = server.port();
  // Sandboxes made ahead of their runs wait between requests by design: not leftovers.
  ASSERT_TRUE(leftover_sandbox_processes(port).empty()) << "sandboxes left by others";
  const std::vector<pid_t> zygotes = zygote_pids(port);

  RawSocket client(port);
  ASSERT_TRUE(client.send(
      raw_execute("import time\ndef main():\n    time.sleep(60)\n", "\"timeout_ms\": 30000")));
  ASSERT_TRUE(eventually([&] { return !leftover_sandbox_processes(port).empty(); }))
      << "the sandbox never started";

  // Every process of the sandbox uids, those made ahead included, dies with the server (a dead
  // one may wait a moment as a zombie for the host's init to reap it).
  const auto alive = [] {
    std::vector<pid_t> out;
    for (const pid_t pid : processes_with_uids(kUidBase, kUidCount))
      if (running(pid)) out.push_back(pid);
    return out;
  };
  server.stop(SIGKILL);
  EXPECT_TRUE(eventually([&] { return alive().empty(); }, 10s))
      << "sandbox processes outlived the server: " << describe_processes(alive());
  for (const pid_t zygote : zygotes) {
    EXPECT_TRUE(eventually([&] { return !running(zygote); }, 10s))
        << "zygote " << zygote << " outlived the server";
  }
}

std::string mode_name(const ::testing::TestParamInfo<std::vector<std::string>>& param) {
  const char* names[] = {"Warm", "Cold", "Rlimit"};
  return names[param.index];
}

INSTANTIATE_TEST_SUITE_P(Modes, ServerDeath,
                         ::testing::Values(std::vector<std::string>{},  // warm
                                           std::vector<std::string>{"--pool=off"},
                                           std::vector<std::string>{"--isolation", "rlimit"}),
                         mode_name);

// --- Signals ---------------------------------------------------------------------------------

TEST(FrontDoorSignals, HupAndUsrAreIgnoredDeliberately) {
  ServerProcess server;
  for (const auto& [sig, name] : {std::pair{SIGHUP, "SIGHUP"}, std::pair{SIGUSR1, "SIGUSR1"},
                                  std::pair{SIGUSR2, "SIGUSR2"}}) {
    ASSERT_EQ(::kill(server.pid(), sig), 0);
    EXPECT_NE(server.wait_for_log(std::string("\"signal\":\"") + name + "\""), "")
        << name << " not acknowledged";
    const auto r = execute(server.port(), "def main():\n    return 1\n");
    EXPECT_EQ(r.status, 200u) << name << ": " << r.body;
  }
  const auto line = server.wait_for_log("\"signal_ignored\"");
  EXPECT_NE(line, "");
}

TEST(FrontDoorSignals, QuitDrainsLikeTerm) {
  ServerProcess server;
  const auto port = server.port();
  auto in_flight = std::async(std::launch::async, [&] {
    return http(port,
                post_execute("import time\ndef main():\n    time.sleep(1.5)\n    return 'done'\n"));
  });
  ASSERT_TRUE(eventually([&] { return admission_field(port, "in_flight") == 1; }));
  ::kill(server.pid(), SIGQUIT);
  const auto r = in_flight.get();
  EXPECT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(server.wait_exit(), 0);
}

// --- Configuration that starts broken --------------------------------------------------------

// One line on stderr, a JSON log line like every other (config_error, with "ts"), exit status
// 2, and no server left running.
void expect_refused_with_one_line(const std::vector<std::string>& args, const std::string& names) {
  const auto [status, log] = run_server_to_exit(args, 60000);
  EXPECT_EQ(status, 2) << log;
  ASSERT_EQ(std::count(log.begin(), log.end(), '\n'), 1) << log;
  boost::system::error_code ec;
  const auto value = boost::json::parse(std::string_view(log).substr(0, log.size() - 1), ec);
  ASSERT_FALSE(ec) << log;
  ASSERT_TRUE(value.is_object()) << log;
  const auto& line = value.as_object();
  const auto* ts = line.if_contains("ts");
  EXPECT_TRUE(ts != nullptr && ts->is_string()) << log;
  EXPECT_EQ(boost::json::serialize(line.at("event")), "\"config_error\"") << log;
  EXPECT_EQ(boost::json::serialize(line.at("component")), "\"server\"") << log;
  ASSERT_TRUE(line.at("message").is_string()) << log;
  EXPECT_NE(std::string_view(line.at("message").get_string()).find(names), std::string::npos)
      << log;
}

TEST(FrontDoorStartup, APreloadModuleThatDoesNotExistRefusesToStart) {
  expect_refused_with_one_line({"--preload", "numpy,no_such_module_xyz"}, "'no_such_module_xyz'");
}

TEST(FrontDoorStartup, AnUnknownFlagRefusesToStart) {
  expect_refused_with_one_line({"--no-such-flag-xyz"}, "--no-such-flag-xyz");
}

TEST(FrontDoorStartup, AMissingExtraReadOnlyPathRefusesToStart) {
  expect_refused_with_one_line({"--extra-ro-paths", "/usr/share:/no/such/path"}, "/no/such/path");
}

// --- File descriptors ------------------------------------------------------------------------

TEST(FrontDoorFds, TheSoftLimitIsRaisedToTheHardOne) {
  ServerProcess server({}, {}, {}, NofileLimit{1024, 4096});
  const auto h = healthz(server.port());
  ASSERT_TRUE(h.contains("fds")) << boost::json::serialize(h);
  EXPECT_EQ(h.at("fds").at("limit").as_int64(), 4096);
}

// systemd's default: 1024 descriptors. Idle connections may not starve runs of descriptors,
// and a new client is served by closing the connection idle the longest.
TEST(FrontDoorFds, IdleConnectionsUnderUlimit1024DoNotStarveRuns) {
  ServerProcess server({"--read-timeout-ms", "60000", "--idle-timeout-ms", "60000"}, {}, {},
                       NofileLimit{1024, 1024});
  const auto port = server.port();
  // More idle connections than descriptors.
  std::vector<std::unique_ptr<RawSocket>> idle;
  for (int i = 0; i < 1100; ++i) {
    idle.push_back(std::make_unique<RawSocket>(port));
    ASSERT_TRUE(idle.back()->connected()) << i;
  }
  const auto started = std::chrono::steady_clock::now();
  const auto r = http(port, post_execute("def main():\n    return 7\n"), 20000);
  EXPECT_EQ(r.status, 200u) << r.body;
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);

  const auto h = healthz(port);
  ASSERT_TRUE(h.contains("fds")) << boost::json::serialize(h);
  const auto& fds = h.at("fds").as_object();
  EXPECT_EQ(fds.at("limit").as_int64(), 1024);
  const auto cap = h.at("connections").at("max").as_int64();
  EXPECT_LT(cap, 1024 - fds.at("reserved").as_int64());
  EXPECT_LE(h.at("connections").at("open").as_int64(), cap);
  // What is open leaves room for every run the server may start.
  EXPECT_LE(fds.at("open").as_int64() +
                h.at("admission").at("max_concurrency").as_int64() * fds.at("per_run").as_int64(),
            1024);
  EXPECT_GT(metric(port, R"(pysandbox_connections_closed_total{reason="evicted"})"), 0);
}

// --- A client that leaves --------------------------------------------------------------------

TEST(FrontDoorClientGone, AClientThatLeavesKillsItsSandboxAndFreesTheSlot) {
  ServerProcess server({"--max-concurrency", "1"});
  const auto port = server.port();
  {
    RawSocket client(port);
    ASSERT_TRUE(client.send(
        raw_execute("def main():\n    while True:\n        pass\n", "\"timeout_ms\": 30000")));
    // Its sandbox runs: a process of a sandbox uid that is not one made ahead of its run.
    ASSERT_TRUE(eventually([&] { return !leftover_sandbox_processes(port).empty(); }));
  }  // closed
  const auto left = std::chrono::steady_clock::now();
  EXPECT_TRUE(eventually([&] { return admission_field(port, "in_flight") == 0; }, 5s));
  EXPECT_TRUE(eventually([&] { return leftover_sandbox_processes(port).empty(); }, 5s))
      << "the sandbox is still running";
  const auto r = execute(port, "def main():\n    return 2\n");
  EXPECT_EQ(r.status, 200u) << r.body;
  EXPECT_LT(std::chrono::steady_clock::now() - left, 10s) << "the next request waited";
  EXPECT_EQ(metric(port, R"(pysandbox_requests_abandoned_total{route="/execute",phase="running"})"),
            1);
  EXPECT_NE(server.wait_for_log("\"abandoned\":\"running\""), "");
}

// --- Readiness -------------------------------------------------------------------------------

TEST(FrontDoorReadyz, ReadyzIsUnavailableWhileAZygoteRestarts) {
  ServerProcess server;
  const auto port = server.port();
  ASSERT_TRUE(
      eventually([&] { return http(port, {.target = "/readyz"}, 5000).status == 200; }, 60s));
  const auto zygotes = zygote_pids(port);
  ASSERT_FALSE(zygotes.empty());
  for (const pid_t z : zygotes) ::kill(z, SIGKILL);
  bool saw_unavailable = false;
  ASSERT_TRUE(eventually(
      [&] {
        const auto r = http(port, {.target = "/readyz"}, 5000);
        if (r.status == 503) {
          saw_unavailable = true;
          EXPECT_EQ(r.json().as_object().at("error_type"), "unavailable");
        }
        return saw_unavailable;
      },
      10s))
      << "/readyz never said the pool was down";
  // Liveness stays up meanwhile.
  EXPECT_EQ(http(port, {.target = "/healthz"}, 5000).status, 200u);
  EXPECT_TRUE(
      eventually([&] { return http(port, {.target = "/readyz"}, 5000).status == 200; }, 60s));
}

// --- Slow readers ----------------------------------------------------------------------------

// 24 clients that never read ask for 1 MiB of control bytes each (6 MiB once escaped): what the
// server holds for them stays bounded.
TEST(FrontDoorSlowReaders, ResponsesToClientsThatDoNotReadAreBounded) {
#ifdef __SANITIZE_ADDRESS__
  GTEST_SKIP() << "under AddressSanitizer the peak RSS measures its quarantine of freed memory";
#endif
  ServerProcess server({"--max-concurrency", "2", "--write-timeout-ms", "30000"});
  const auto port = server.port();
  ASSERT_EQ(execute(port, "def main():\n    return 1\n").status, 200u);  // warm up
  const long rss_before = status_kb(server.pid(), "VmRSS");
  std::vector<std::unique_ptr<RawSocket>> readers;
  const std::string request =
      raw_execute("import sys\ndef main():\n    sys.stdout.write('\\x01' * ((1 << 20) - 64))\n");
  for (int i = 0; i < 24; ++i) {
    readers.push_back(std::make_unique<RawSocket>(port, 4096));
    ASSERT_TRUE(readers.back()->send(request));
  }
  ASSERT_TRUE(eventually(
      [&] {
        return admission_field(port, "in_flight") == 0 && admission_field(port, "queued") == 0;
      },
      120s));
  const long peak = status_kb(server.pid(), "VmHWM");
  std::cout << "[ figures  ] server VmRSS before " << rss_before << " kB, VmHWM after " << peak
            << " kB\n";
  EXPECT_LT(peak - rss_before, 96 * 1024)
      << "server grew from " << rss_before << " kB to a peak of " << peak << " kB";
}

// --- The log ---------------------------------------------------------------------------------

// Every line the server (and everything sharing its stderr: probes, the pool, zygotes) writes
// is a JSON object with "ts", also after a zygote died and the pool swept its orphans.
TEST(FrontDoorLog, EveryLineIsJsonWithATimestamp) {
  ServerProcess server;
  const auto port = server.port();
  EXPECT_EQ(execute(port, "def main():\n    return 1\n").status, 200u);
  {
    RawSocket client(port);
    client.send("GET /\xff\xfe\x80/x HTTP/1.1\r\nHost: x\r\n\r\n");
    client.send(
        "POST /execute HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Type: \xc3\x28"
        "\r\n\r\n");
  }
  for (const pid_t z : zygote_pids(port)) ::kill(z, SIGKILL);
  EXPECT_NE(server.wait_for_log("zygote_exit"), "");
  ASSERT_TRUE(
      eventually([&] { return http(port, {.target = "/readyz"}, 5000).status == 200; }, 60s));
  EXPECT_EQ(execute(port, "def main():\n    return 2\n").status, 200u);
  EXPECT_EQ(server.stop(SIGTERM), 0);
  const auto lines = server.log_lines();
  ASSERT_FALSE(lines.empty());
  bool saw_shutdown = false;
  for (const auto& line : lines) {
    boost::system::error_code ec;
    const auto value = boost::json::parse(line, ec);
    ASSERT_FALSE(ec) << ::testing::PrintToString(line);
    ASSERT_TRUE(value.is_object()) << line;
    const auto* ts = value.as_object().if_contains("ts");
    EXPECT_TRUE(ts != nullptr && ts->is_string()) << line;
    saw_shutdown = saw_shutdown || line.find("\"event\":\"shutdown\"") != std::string::npos;
  }
  EXPECT_TRUE(saw_shutdown) << "the log stopped before the end";
}

}  // namespace
}  // namespace pysandbox::e2e
