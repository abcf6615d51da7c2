// What a request may hold and for how long, against the in-process server: a client that
// leaves cancels its request, responses are bounded in size and in total, each timeout is
// counted, and readiness says whether runs would start warm.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <string>
#include <vector>

#include "beast_server/tests/server_harness.hpp"

namespace pysandbox::beast_server {
namespace {

using namespace testing;

TEST(Cancellation, AClientThatLeavesWhileItsRunRunsCancelsIt) {
  Config config = test_config();
  config.max_concurrency = 1;
  config.executor.max_concurrency = 1;
  ServerHarness harness(config);
  {
    Client client(harness.port);
    auto request = execute_request("wait");  // would run for 30 s
    client.write(request);
    ASSERT_TRUE(eventually([&] { return harness.executor.running() == 1; }));
  }  // the client closes its socket
  EXPECT_TRUE(eventually([&] { return harness.executor.cancelled() == 1; }))
      << "the run was not cancelled";
  wait_for_admission(harness.port, [](const auto& a) { return u64(a.at("in_flight")) == 0; });
  // The only slot is free at once: a new request is served without waiting out the first.
  Client next(harness.port);
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(next.send(execute_request("next")).result_int(), 200u);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  EXPECT_EQ(metric(harness.port,
                   R"(pysandbox_requests_abandoned_total{route="/execute",phase="running"})"),
            1);
  // Not an answer anybody got: only the second request counts as a 200.
  EXPECT_EQ(metric(harness.port,
                   R"(pysandbox_requests_total{route="/execute",status="200",error_type="ok"})"),
            1);
  harness.stop();
  harness.join();
  EXPECT_NE(harness.log.str().find(R"("abandoned":"running")"), std::string::npos)
      << harness.log.str();
}

TEST(Cancellation, AClientThatLeavesTheQueueLeavesItAtOnce) {
  Config config = test_config();
  config.max_concurrency = 1;
  config.executor.max_concurrency = 1;
  ServerHarness harness(config);
  auto holder = std::async(std::launch::async, [&harness] {
    Client client(harness.port);
    return client.send(execute_request("wait"));
  });
  wait_for_admission(harness.port, [](const auto& a) { return u64(a.at("in_flight")) == 1; });
  {
    Client queued(harness.port);
    auto request = execute_request("queued");
    queued.write(request);
    wait_for_admission(harness.port, [](const auto& a) { return u64(a.at("queued")) == 1; });
  }
  wait_for_admission(harness.port, [](const auto& a) { return u64(a.at("queued")) == 0; });
  EXPECT_EQ(metric(harness.port,
                   R"(pysandbox_requests_abandoned_total{route="/execute",phase="queued"})"),
            1);
  harness.executor.open_gate();
  EXPECT_EQ(holder.get().result_int(), 200u);
  EXPECT_EQ(harness.executor.runs(), 1) << "the abandoned request ran anyway";
}

TEST(Cancellation, PipelinedBytesReadWhileWatchingAreKept) {
  ServerHarness harness;
  Client client(harness.port);
  // The second request arrives while the first runs (and the socket is being watched).
  auto first = execute_request("sleep:200");
  client.write(first);
  ASSERT_TRUE(eventually([&] { return harness.executor.running() == 1; }));
  auto second = execute_request("second");
  client.write(second);
  EXPECT_EQ(json_of(client.read()).at("stdout").as_string(), "sleep:200");
  EXPECT_EQ(json_of(client.read()).at("stdout").as_string(), "second");
  EXPECT_EQ(harness.executor.cancelled(), 0);
}

TEST(Readiness, ReadyzFollowsTheExecutorAndTheDrain) {
  ServerHarness harness;
  harness.executor.set_ready(false);
  Client client(harness.port);
  auto response = client.send(make_request(http::verb::get, "/readyz"));
  EXPECT_EQ(response.result_int(), 503u);
  auto body = json_of(response);
  EXPECT_EQ(body.at("error_type").as_string(), "unavailable");
  EXPECT_EQ(body.at("status").as_string(), "starting");
  EXPECT_EQ(body.at("request_id").as_string(), response["X-Request-Id"]);
  // Liveness is not readiness.
  EXPECT_EQ(client.send(make_request(http::verb::get, "/healthz")).result_int(), 200u);
  EXPECT_EQ(metric(harness.port, "pysandbox_ready"), 0);

  harness.executor.set_ready(true);
  response = client.send(make_request(http::verb::get, "/readyz"));
  EXPECT_EQ(response.result_int(), 200u);
  EXPECT_EQ(json_of(response).at("status").as_string(), "ready");
  EXPECT_EQ(client.send(make_request(http::verb::head, "/readyz")).result_int(), 200u);
  EXPECT_EQ(client.send(make_request(http::verb::post, "/readyz", "{}")).result_int(), 405u);

  // While draining: 503 again. A request whose header was taken before the drain answers.
  Client late(harness.port);
  late.write_raw(
      "GET /readyz HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n");
  EXPECT_EQ(late.read().result_int(), 100u);
  harness.stop();
  late.write_raw("x");
  response = late.read();
  EXPECT_EQ(response.result_int(), 503u);
  EXPECT_EQ(json_of(response).at("status").as_string(), "draining");
}

TEST(OutputCap, EscapedOutputPastTheCapIsAnOutputLimit) {
  Config config = test_config();
  config.executor.max_output_bytes = 6000;
  ServerHarness harness(config);
  Client client(harness.port);
  // 2000 control bytes are within the raw cap but 12000 bytes as JSON text.
  auto response = client.send(execute_request("ctrl:2000"));
  EXPECT_EQ(response.result_int(), 422u) << response.body().substr(0, 200);
  auto body = json_of(response);
  EXPECT_EQ(body.at("error_type").as_string(), "output_limit");
  EXPECT_TRUE(body.at("truncated").as_bool());
  EXPECT_EQ(body.at("stdout").as_string().size(), 1000u);  // 6000 / 6
  EXPECT_LT(response.body().size(), 8000u);
  // Plain text fits as it is.
  response = client.send(execute_request("out:5000"));
  EXPECT_EQ(response.result_int(), 200u);
  EXPECT_EQ(json_of(response).at("stdout").as_string().size(), 5000u);
}

TEST(OutputCap, WithTruncationTheOutputIsCutAndFlagged) {
  Config config = test_config();
  config.executor.max_output_bytes = 6000;
  config.executor.truncate_output = true;
  ServerHarness harness(config);
  Client client(harness.port);
  const auto response = client.send(execute_request("ctrl:2000"));
  EXPECT_EQ(response.result_int(), 200u);
  const auto body = json_of(response);
  EXPECT_TRUE(body.at("truncated").as_bool());
  EXPECT_EQ(body.at("stdout").as_string().size(), 1000u);
}

// Responses clients do not take are bounded in total: a finished run waits for room (holding
// its slot), and the write timeout frees it.
TEST(ResponseMemory, ResponsesNotTakenAreBoundedInTotal) {
  Config config = test_config();
  config.max_concurrency = 2;
  config.executor.max_concurrency = 2;
  config.executor.max_output_bytes = 64u << 20;
  config.response_memory_bytes = 12u << 20;
  // Long enough that B is seen waiting before A's write is cut (an AddressSanitizer build on a
  // slow VM took over 1.5 s to get there once).
  config.write_timeout_ms = 4000;
  ServerHarness harness(config);
  constexpr std::size_t kBig = 8'000'000;  // beyond what the kernel buffers for one socket
  const std::string big = "out:" + std::to_string(kBig);

  // A reads nothing: its response stays held until the write timeout cuts it.
  Client a(harness.port, 4096);
  auto request_a = execute_request(big);
  a.write(request_a);
  ASSERT_TRUE(eventually(
      [&] { return metric(harness.port, "pysandbox_response_memory_bytes") >= double(kBig); }));

  // B's response does not fit beside A's: B's run waits for room, holding its slot.
  Client b(harness.port, 4096);
  auto request_b = execute_request(big);
  b.write(request_b);
  ASSERT_TRUE(eventually(
      [&] { return metric(harness.port, "pysandbox_response_memory_waits_total") >= 1; }));
  EXPECT_EQ(u64(healthz(harness.port).at("admission").at("in_flight")), 1u);
  EXPECT_LE(metric(harness.port, "pysandbox_response_memory_bytes"), double(12u << 20));

  // A's write times out: cut, counted, and B's response moves in.
  EXPECT_TRUE(eventually(
      [&] {
        return metric(harness.port, R"(pysandbox_responses_cut_total{route="/execute"})") == 1;
      },
      10s));
  EXPECT_EQ(metric(harness.port, R"(pysandbox_connections_closed_total{reason="write_timeout"})"),
            1);
  EXPECT_TRUE(eventually([&] {
    return u64(healthz(harness.port).at("admission").at("in_flight")) == 0 &&
           metric(harness.port, "pysandbox_response_memory_bytes") >= double(kBig);
  }));
  // Neither was a delivered 200.
  EXPECT_EQ(metric(harness.port,
                   R"(pysandbox_requests_total{route="/execute",status="200",error_type="ok"})"),
            -1);
}

TEST(Timeouts, EachTimeoutIsCounted) {
  Config config = test_config();
  config.read_timeout_ms = 200;
  config.idle_timeout_ms = 200;
  ServerHarness harness(config);
  {
    Client silent(harness.port);
    EXPECT_TRUE(silent.wait_for_close());
  }
  {
    Client partial(harness.port);
    partial.write_raw("GET /healthz HTTP/1.1\r\nHo");
    EXPECT_TRUE(partial.wait_for_close());
  }
  {
    Client idle(harness.port);
    EXPECT_EQ(idle.send(make_request(http::verb::get, "/healthz")).result_int(), 200u);
    EXPECT_TRUE(idle.wait_for_close());
  }
  EXPECT_EQ(metric(harness.port, R"(pysandbox_connections_closed_total{reason="read_timeout"})"),
            2);
  EXPECT_EQ(metric(harness.port, R"(pysandbox_connections_closed_total{reason="idle_timeout"})"),
            1);
}

TEST(FdBudget, HealthzAndMetricsShowTheBudget) {
  Config config = test_config();
  config.max_connections = 50;
  config.executor.pool = false;  // no zygotes to reserve for
  ServerHarness harness(config);
  const auto health = healthz(harness.port);
  const auto& fds = health.at("fds").as_object();
  EXPECT_GT(u64(fds.at("limit")), 0u);
  EXPECT_GT(u64(fds.at("open")), 2u);
  EXPECT_EQ(u64(fds.at("reserved")), 4 * kFdsPerRun + kFdSlack);
  EXPECT_EQ(u64(health.at("connections").at("max")), 50u);
  EXPECT_EQ(u64(health.at("connections").at("open")), 1u);
  EXPECT_EQ(metric(harness.port, "pysandbox_max_connections"), 50);
  EXPECT_GT(metric(harness.port, "pysandbox_fds_open"), 2);
  EXPECT_GT(metric(harness.port, "pysandbox_fds_limit"), 0);
}

// The process's soft RLIMIT_NOFILE lowered for a test (the in-process server shares it), and
// descriptors held to use it up; everything restored on destruction.
class ScarceDescriptors {
 public:
  explicit ScarceDescriptors(rlim_t soft) {
    ::getrlimit(RLIMIT_NOFILE, &saved_);
    rlimit lowered = saved_;
    lowered.rlim_cur = soft;
    ::setrlimit(RLIMIT_NOFILE, &lowered);
  }
  ~ScarceDescriptors() {
    release();
    ::setrlimit(RLIMIT_NOFILE, &saved_);
  }
  // Opens descriptors until only `left` can still be opened.
  void use_up(int left) {
    for (;;) {
      const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) break;
      held_.push_back(fd);
    }
    for (int i = 0; i < left && !held_.empty(); ++i) {
      ::close(held_.back());
      held_.pop_back();
    }
  }
  void release() {
    for (const int fd : held_) ::close(fd);
    held_.clear();
  }

 private:
  rlimit saved_{};
  std::vector<int> held_;
};

TEST(FdBudget, OutOfDescriptorsAtAcceptTheClientStillGets503) {
  ScarceDescriptors scarce(512);
  Config config = test_config();
  config.executor.pool = false;
  ServerHarness harness(config);
  // Every code path once while descriptors are plentiful (a sanitizer build's UBSan checks a
  // type the first time it sees it, and needs a pipe to do so); then wait until the server has
  // closed that connection's socket, so that no descriptor frees up behind the test's back.
  const std::uint64_t before = count_open_fds();
  EXPECT_EQ(healthz(harness.port).at("status").as_string(), "ok");
  ASSERT_TRUE(eventually([&] { return count_open_fds() <= before; }));
  // One descriptor left: the client's socket takes it, and accept() finds none.
  scarce.use_up(1);
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  const timeval timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(harness.port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  std::string received;
  char chunk[4096];
  for (ssize_t n; (n = ::recv(fd, chunk, sizeof chunk, 0)) > 0;) received.append(chunk, n);
  ::close(fd);
  scarce.release();
  EXPECT_TRUE(received.starts_with("HTTP/1.1 503")) << "got: " << received;
  EXPECT_NE(received.find("unavailable"), std::string::npos) << received;
  // The server is fine once descriptors are back.
  {
    Client after(harness.port);
    const auto health = after.send(make_request(http::verb::get, "/healthz"));
    EXPECT_EQ(health.result_int(), 200u)
        << health.body() << " cap " << harness.server->fd_plan().max_connections << " limit "
        << harness.server->fd_plan().limit << " baseline " << harness.server->fd_plan().baseline;
  }
  harness.stop();
  harness.join();
  EXPECT_NE(harness.log.str().find("\"accept_error\""), std::string::npos);
}

TEST(FdBudget, ARunThatWouldFindNoDescriptorsIs503) {
  ScarceDescriptors scarce(512);
  Config config = test_config();
  config.executor.pool = false;
  ServerHarness harness(config);
  Client client(harness.port);
  scarce.use_up(static_cast<int>(kFdsPerRun) / 2);
  const auto response = client.send(execute_request("needs-descriptors"));
  scarce.release();
  EXPECT_EQ(response.result_int(), 503u) << response.body();
  EXPECT_EQ(json_of(response).at("error_type").as_string(), "unavailable");
  EXPECT_EQ(response[http::field::retry_after], "1");
  EXPECT_EQ(harness.executor.runs(), 0);
  EXPECT_EQ(client.send(execute_request("with-descriptors")).result_int(), 200u);
}

}  // namespace
}  // namespace pysandbox::beast_server
