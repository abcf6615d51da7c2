// The HTTP behaviour of the real binary: keep-alive, concurrency, admission, timeouts, drain.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <future>
#include <thread>

#include "tests/e2e/http_client.hpp"
#include "tests/e2e/server_process.hpp"

namespace pysandbox::e2e {
namespace {

HttpRequest post_execute(const std::string& script, const std::string& extra = "") {
  HttpRequest r;
  r.method = "POST";
  r.target = "/execute";
  r.headers["Content-Type"] = "application/json";
  r.body = "{\"script\": " + quote(script) + (extra.empty() ? "" : ", " + extra) + "}";
  return r;
}

boost::json::object admission(unsigned short port) {
  auto h = http(port, {.target = "/healthz"});
  auto doc = h.json();
  if (!doc.is_object() || !doc.as_object().contains("admission")) return {};
  return doc.as_object().at("admission").as_object();
}

// Polls /healthz until `pred(admission)` holds (bounded): synchronises on the server's own
// state instead of sleeping.
template <typename Pred>
bool wait_admission(unsigned short port, Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    auto a = admission(port);
    if (!a.empty() && pred(a)) return true;
    std::this_thread::yield();
  }
  return false;
}

std::int64_t field(const boost::json::object& o, const char* name) {
  const auto* v = o.if_contains(name);
  return v != nullptr && v->is_int64() ? v->as_int64() : -1;
}

TEST(Http, SuccessShapeMatchesTheContract) {
  ServerProcess server;
  auto r = execute(server.port(), "def main():\n    print('len:', 3)\n    return {'sum': 6}\n");
  ASSERT_EQ(r.status, 200u) << r.body;
  auto doc = r.json().as_object();
  EXPECT_EQ(boost::json::serialize(doc.at("result")), R"({"sum":6})");
  EXPECT_EQ(doc.at("stdout"), "len: 3\n");
  EXPECT_EQ(doc.at("stderr"), "");
  EXPECT_EQ(doc.at("truncated"), false);
  EXPECT_EQ(doc.at("isolation"), "namespaces");
  const auto& usage = doc.at("usage").as_object();
  for (const char* k : {"wall_ms", "cpu_ms", "peak_memory_bytes"}) EXPECT_TRUE(usage.contains(k));
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_FALSE(r.header("x-request-id").empty());
}

TEST(Http, KeepAliveServesSeveralRequestsOnOneConnection) {
  ServerProcess server;
  HttpConnection c(server.port());
  for (int i = 0; i < 3; ++i) {
    auto r = c.send(post_execute("def main():\n    return " + std::to_string(i) + "\n"));
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.json().as_object().at("result"), boost::json::value(i));
  }
  auto h = c.send({.target = "/healthz"});
  EXPECT_EQ(h.status, 200u);
}

TEST(Http, FiftyConcurrentRequestsEachGetTheirOwnResponse) {
  ServerProcess server({"--max-concurrency", "2", "--queue-size", "64"});
  std::vector<std::future<std::pair<int, HttpResponse>>> futures;
  for (int i = 0; i < 50; ++i) {
    futures.push_back(std::async(std::launch::async, [&, i] {
      HttpRequest req = post_execute("def main():\n    print('req', " + std::to_string(i) +
                                     ")\n    return " + std::to_string(i) + "\n");
      req.headers["X-Request-Id"] = "req-" + std::to_string(i);
      return std::pair{i, http(server.port(), req)};
    }));
  }
  for (auto& f : futures) {
    auto [i, r] = f.get();
    ASSERT_EQ(r.status, 200u) << i << ": " << r.body;
    auto doc = r.json().as_object();
    EXPECT_EQ(doc.at("result"), boost::json::value(i));
    EXPECT_EQ(doc.at("stdout"), boost::json::value("req " + std::to_string(i) + "\n"));
    EXPECT_EQ(r.header("x-request-id"), "req-" + std::to_string(i));
  }
}

TEST(Http, FullQueueAnswers429WithRetryAfter) {
  ServerProcess server({"--max-concurrency", "1", "--queue-size", "1"});
  const auto port = server.port();
  // Holds the only slot until its file appears... no shared files: it just sleeps long enough
  // for the test to observe the state it needs, and the checks synchronise on /healthz.
  auto running = std::async(std::launch::async, [&] {
    return http(port, post_execute("import time\ndef main():\n    time.sleep(3)\n    return 1\n"));
  });
  ASSERT_TRUE(wait_admission(port, [](auto& a) { return field(a, "in_flight") == 1; }));
  auto queued = std::async(std::launch::async,
                           [&] { return http(port, post_execute("def main():\n    return 2\n")); });
  ASSERT_TRUE(wait_admission(port, [](auto& a) { return field(a, "queued") == 1; }));
  auto refused = http(port, post_execute("def main():\n    return 3\n"));
  EXPECT_EQ(refused.status, 429u) << refused.body;
  EXPECT_EQ(refused.json().as_object().at("error_type"), "overloaded");
  EXPECT_FALSE(refused.header("retry-after").empty());
  EXPECT_EQ(running.get().status, 200u);
  EXPECT_EQ(queued.get().status, 200u);
}

TEST(Http, SlowClientIsDisconnected) {
  ServerProcess server({"--read-timeout-ms", "500"});
  HttpConnection c(server.port());
  const std::string partial = "POST /execute HTTP/1.1\r\nHost: x\r\nContent-Len";
  ASSERT_EQ(::send(c.native_handle(), partial.data(), partial.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(partial.size()));
  EXPECT_TRUE(c.closed_by_server(10000));
}

TEST(Http, SigtermDrainsInFlightRequestsAndExitsZero) {
  ServerProcess server;
  const auto port = server.port();
  auto in_flight = std::async(std::launch::async, [&] {
    return http(port,
                post_execute("import time\ndef main():\n    time.sleep(1.5)\n    return 'done'\n"));
  });
  ASSERT_TRUE(wait_admission(port, [](auto& a) { return field(a, "in_flight") == 1; }));
  ::kill(server.pid(), SIGTERM);
  auto r = in_flight.get();
  EXPECT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.json().as_object().at("result"), "done");
  EXPECT_EQ(server.wait_exit(), 0);
}

TEST(Http, FloorAboveTheHostsModeRefusesToStart) {
  auto [status, log] = run_server_to_exit({"--min-isolation", "full"});
  EXPECT_NE(status, 0);
  EXPECT_NE(log.find("full"), std::string::npos) << log;
}

}  // namespace
}  // namespace pysandbox::e2e
