// The server in-process on 127.0.0.1:<ephemeral>, run by a background io thread with a fake
// executor, driven by blocking clients (each with its own io_context and a deadline, so that a
// server bug fails a test instead of hanging it).
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "beast_server/tests/server_harness.hpp"

namespace pysandbox::beast_server {
namespace {

using namespace testing;
using namespace std::chrono_literals;

TEST(HttpServer, HealthzReportsIsolationVersionAndAdmission) {
  ServerHarness harness;
  Client client(harness.port);
  const auto response = client.send(make_request(http::verb::get, "/healthz"));
  EXPECT_EQ(response.result_int(), 200u);
  expect_common_headers(response);
  const auto body = json_of(response);
  EXPECT_EQ(body.at("status").as_string(), "ok");
  EXPECT_EQ(body.at("isolation").at("mode").as_string(), "namespaces");
  EXPECT_FALSE(body.at("version").as_string().empty());
  const auto& admission = body.at("admission").as_object();
  EXPECT_EQ(u64(admission.at("max_concurrency")), 4u);
  EXPECT_EQ(u64(admission.at("in_flight")), 0u);
  EXPECT_EQ(u64(admission.at("queued")), 0u);
  EXPECT_EQ(u64(admission.at("queue_size")), 64u);
}

TEST(HttpServer, ExecuteTwiceOnOneKeptAliveConnection) {
  ServerHarness harness;
  Client client(harness.port);
  for (const std::string script : {"first", "second"}) {
    auto request = make_request(
        http::verb::post, "/execute",
        R"({"script": ")" + script + R"(", "timeout_ms": 999999, "memory_mb": 64, "stdin": "in"})");
    const auto response = client.send(request);
    ASSERT_EQ(response.result_int(), 200u) << response.body();
    expect_common_headers(response);
    EXPECT_TRUE(response.keep_alive());
    const auto body = json_of(response);
    EXPECT_EQ(body.at("stdout").as_string(), script);
    EXPECT_EQ(body.at("isolation").as_string(), "namespaces");
    EXPECT_FALSE(body.at("truncated").as_bool());
    EXPECT_EQ(u64(body.at("usage").at("peak_memory_bytes")), 1u << 20);
    const auto& result = body.at("result").as_object();
    EXPECT_EQ(result.at("stdin").as_string(), "in");
    EXPECT_EQ(result.at("timeout_ms").as_int64(), 30000) << "capped at max_timeout_ms";
    EXPECT_EQ(u64(result.at("memory_mb")), 64u);
    EXPECT_EQ(result.at("request_id").as_string(), response["X-Request-Id"]);
  }
  EXPECT_EQ(harness.executor.runs(), 2);
}

TEST(HttpServer, RoutingErrors) {
  ServerHarness harness;
  Client client(harness.port);

  auto response = client.send(make_request(http::verb::get, "/nope"));
  EXPECT_EQ(response.result_int(), 404u);
  expect_common_headers(response);
  EXPECT_EQ(json_of(response).at("error_type").as_string(), "not_found");

  response = client.send(make_request(http::verb::get, "/execute"));
  EXPECT_EQ(response.result_int(), 405u);
  EXPECT_EQ(response[http::field::allow], "POST");
  EXPECT_EQ(json_of(response).at("request_id").as_string(), response["X-Request-Id"]);

  response = client.send(make_request(http::verb::post, "/healthz", "{}"));
  EXPECT_EQ(response.result_int(), 405u);
  EXPECT_EQ(response[http::field::allow], "GET, HEAD");

  response = client.send(make_request(http::verb::delete_, "/metrics"));
  EXPECT_EQ(response.result_int(), 405u);

  // Query strings do not affect routing.
  response = client.send(make_request(http::verb::get, "/healthz?verbose=1"));
  EXPECT_EQ(response.result_int(), 200u);

  // All on one connection: error responses keep it alive.
  EXPECT_TRUE(response.keep_alive());
}

TEST(HttpServer, ContentTypeMustBeJson) {
  ServerHarness harness;
  Client client(harness.port);
  auto response =
      client.send(make_request(http::verb::post, "/execute", R"({"script": "x"})", "text/plain"));
  EXPECT_EQ(response.result_int(), 415u);
  EXPECT_EQ(json_of(response).at("error_type").as_string(), "unsupported_media_type");

  auto no_type = make_request(http::verb::post, "/execute", R"({"script": "x"})");
  no_type.erase(http::field::content_type);
  EXPECT_EQ(client.send(no_type).result_int(), 415u);

  response = client.send(make_request(http::verb::post, "/execute", R"({"script": "x"})",
                                      "Application/JSON ; charset=utf-8"));
  EXPECT_EQ(response.result_int(), 200u) << response.body();
}

TEST(HttpServer, ValidationErrorsFromTheBody) {
  ServerHarness harness;
  Client client(harness.port);
  auto response = client.send(make_request(http::verb::post, "/execute", "{not json"));
  EXPECT_EQ(response.result_int(), 400u);
  EXPECT_EQ(json_of(response).at("error_type").as_string(), "invalid_json");
  response = client.send(make_request(http::verb::post, "/execute", R"({"script": "x", "y": 1})"));
  EXPECT_EQ(response.result_int(), 400u);
  EXPECT_EQ(json_of(response).at("error_type").as_string(), "invalid_request");
  response = client.send(execute_request(std::string(17 << 10, 'x')));
  EXPECT_EQ(response.result_int(), 413u);
  EXPECT_EQ(json_of(response).at("error_type").as_string(), "too_large");
  EXPECT_TRUE(response.keep_alive());
  EXPECT_EQ(harness.executor.runs(), 0);
}

TEST(HttpServer, OutcomesMapThroughHttp) {
  ServerHarness harness;
  Client client(harness.port);
  auto response = client.send(execute_request("status:timeout"));
  EXPECT_EQ(response.result_int(), 422u);
  auto body = json_of(response);
  EXPECT_EQ(body.at("error_type").as_string(), "timeout");
  EXPECT_EQ(body.at("stdout").as_string(), "status:timeout");
  EXPECT_EQ(body.at("trace").as_string(), "Traceback (fake)");
  EXPECT_TRUE(body.contains("usage"));

  response = client.send(execute_request("status:killed"));
  EXPECT_EQ(response.result_int(), 422u);
  EXPECT_EQ(json_of(response).at("signal").as_string(), "SIGKILL");

  response = client.send(execute_request("status:internal"));
  EXPECT_EQ(response.result_int(), 500u);
  body = json_of(response);
  EXPECT_EQ(body.at("error_type").as_string(), "internal");
  EXPECT_EQ(body.at("request_id").as_string(), response["X-Request-Id"]);
  EXPECT_EQ(response.body().find("fake internal detail"), std::string::npos);

  auto throwing = execute_request("throw");
  throwing.set("X-Request-Id", "boom-1");
  response = client.send(throwing);
  EXPECT_EQ(response.result_int(), 500u);
  EXPECT_EQ(json_of(response).at("request_id").as_string(), "boom-1");
  EXPECT_EQ(response.body().find("exploded"), std::string::npos);
  EXPECT_EQ(harness.executor.running(), 0);

  harness.stop();
  harness.join();
  const std::string log = harness.log.str();
  EXPECT_NE(log.find(R"("request_id":"boom-1")"), std::string::npos) << log;
  EXPECT_NE(log.find("fake executor exploded"), std::string::npos) << log;
  EXPECT_NE(log.find("fake internal detail"), std::string::npos) << log;
}

TEST(HttpServer, BodyOverTheLimitIs413ThenClose) {
  ServerHarness harness;
  Client client(harness.port);
  const std::string big(100 << 10, 'x');
  const auto response = client.send(execute_request(big));
  EXPECT_EQ(response.result_int(), 413u);
  EXPECT_EQ(json_of(response).at("error_type").as_string(), "too_large");
  EXPECT_FALSE(response.keep_alive());
  EXPECT_TRUE(client.wait_for_close());
}

TEST(HttpServer, ChunkedBodyOverTheLimitIs413ThenClose) {
  ServerHarness harness;
  Client client(harness.port);
  auto request = execute_request(std::string(100 << 10, 'x'));
  request.chunked(true);
  const auto response = client.send(request);
  EXPECT_EQ(response.result_int(), 413u);
  EXPECT_TRUE(client.wait_for_close());
}

TEST(HttpServer, ExpectContinueGetsAnInterimResponse) {
  ServerHarness harness;
  Client client(harness.port);
  const std::string body = R"({"script": "after-continue"})";
  client.write_raw(
      "POST /execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Expect: 100-continue\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n");
  const auto interim = client.read();
  EXPECT_EQ(interim.result_int(), 100u);
  client.write_raw(body);
  const auto response = client.read();
  EXPECT_EQ(response.result_int(), 200u);
  EXPECT_EQ(json_of(response).at("stdout").as_string(), "after-continue");

  // Refused on the header: the final status comes instead of 100, and the connection closes.
  client.write_raw(
      "POST /execute HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
      "Expect: 100-continue\r\nContent-Length: 10\r\n\r\n");
  const auto refused = client.read();
  EXPECT_EQ(refused.result_int(), 415u);
  EXPECT_FALSE(refused.keep_alive());
  EXPECT_TRUE(client.wait_for_close());
}

TEST(HttpServer, ExpectContinueWithAnOversizedBodyGets413Instead) {
  ServerHarness harness;
  Client client(harness.port);
  client.write_raw(
      "POST /execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Expect: 100-continue\r\nContent-Length: 10000000\r\n\r\n");
  const auto response = client.read();
  EXPECT_EQ(response.result_int(), 413u);
  EXPECT_EQ(json_of(response).at("error_type").as_string(), "too_large");
  EXPECT_TRUE(client.wait_for_close());
}

TEST(HttpServer, PipelinedRequestsAreAnsweredInOrder) {
  ServerHarness harness;
  Client client(harness.port);
  std::string both;
  for (const char* script : {"one", "two"}) {
    const std::string body = std::string(R"({"script":")") + script + "\"}";
    both +=
        "POST /execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body;
  }
  client.write_raw(both);
  EXPECT_EQ(json_of(client.read()).at("stdout").as_string(), "one");
  EXPECT_EQ(json_of(client.read()).at("stdout").as_string(), "two");
}

TEST(HttpServer, RequestIdIsEchoedOrGenerated) {
  ServerHarness harness;
  Client client(harness.port);
  auto request = make_request(http::verb::get, "/missing");
  request.set("X-Request-Id", "client.id_42-x");
  auto response = client.send(request);
  EXPECT_EQ(response["X-Request-Id"], "client.id_42-x");
  EXPECT_EQ(json_of(response).at("request_id").as_string(), "client.id_42-x");

  response = client.send(make_request(http::verb::get, "/missing"));
  const std::string generated(response["X-Request-Id"]);
  EXPECT_EQ(generated.size(), 16u);
  EXPECT_EQ(generated.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(json_of(response).at("request_id").as_string(), generated);

  request.set("X-Request-Id", "has space");
  response = client.send(request);
  EXPECT_NE(response["X-Request-Id"], "has space");
  EXPECT_EQ(response["X-Request-Id"].size(), 16u);

  response = client.send(make_request(http::verb::get, "/missing"));
  EXPECT_NE(response["X-Request-Id"], generated) << "ids must not repeat";

  harness.stop();
  harness.join();
  const std::string log = harness.log.str();
  EXPECT_NE(log.find(R"("request_id":"client.id_42-x")"), std::string::npos) << log;
  EXPECT_NE(log.find(R"("request_id":")" + generated + "\""), std::string::npos) << log;
  EXPECT_NE(log.find(R"("remote":"127.0.0.1:)"), std::string::npos) << log;
}

TEST(HttpServer, ConcurrentRequestsEachGetTheirOwnResponse) {
  ServerHarness harness;
  constexpr int kClients = 50;
  std::atomic<int> matched{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      try {
        Client client(harness.port);
        const std::string script = "echo-" + std::to_string(i);
        auto request = execute_request(script);
        request.set("X-Request-Id", "req-" + std::to_string(i));
        const auto response = client.send(request);
        const auto body = json_of(response);
        if (response.result_int() == 200 && body.at("stdout").as_string() == script &&
            response["X-Request-Id"] == "req-" + std::to_string(i) &&
            body.at("result").at("request_id").as_string() == "req-" + std::to_string(i)) {
          ++matched;
        } else {
          ADD_FAILURE() << "client " << i << " got " << response.result_int() << " "
                        << response.body();
        }
      } catch (const std::exception& e) {
        ADD_FAILURE() << "client " << i << ": " << e.what();
      }
    });
  }
  for (auto& thread : clients) thread.join();
  EXPECT_EQ(matched.load(), kClients);
  EXPECT_EQ(harness.executor.runs(), kClients);
  EXPECT_LE(harness.executor.most_running(), 4);
  EXPECT_FALSE(harness.executor.slot_shared()) << "two live sandboxes shared a slot index";
}

TEST(HttpServer, OverloadedWhenSlotsAndQueueAreFull) {
  Config config = test_config();
  config.max_concurrency = 1;
  config.executor.max_concurrency = 1;
  config.queue_size = 1;
  ServerHarness harness(config);

  auto run_in_background = [&](const std::string& script) {
    return std::async(std::launch::async, [&harness, script] {
      Client client(harness.port);
      return client.send(execute_request(script));
    });
  };
  auto running = run_in_background("wait");
  wait_for_admission(harness.port, [](const auto& a) { return u64(a.at("in_flight")) == 1; });
  auto queued = run_in_background("queued");
  wait_for_admission(harness.port, [](const auto& a) { return u64(a.at("queued")) == 1; });

  Client client(harness.port);
  const auto refused = client.send(execute_request("refused"));
  EXPECT_EQ(refused.result_int(), 429u);
  EXPECT_EQ(refused[http::field::retry_after], "1");
  EXPECT_EQ(json_of(refused).at("error_type").as_string(), "overloaded");

  harness.executor.open_gate();
  EXPECT_EQ(running.get().result_int(), 200u);
  EXPECT_EQ(queued.get().result_int(), 200u);
  EXPECT_EQ(harness.executor.runs(), 2);

  const auto metrics = client.send(make_request(http::verb::get, "/metrics"));
  EXPECT_NE(
      metrics.body().find(
          R"(pysandbox_requests_total{route="/execute",status="429",error_type="overloaded"} 1)"),
      std::string::npos)
      << metrics.body();
}

TEST(HttpServer, SlowClientIsDisconnectedAfterTheReadTimeout) {
  Config config = test_config();
  config.read_timeout_ms = 300;
  ServerHarness harness(config);
  Client client(harness.port);
  const auto started = std::chrono::steady_clock::now();
  client.write_raw("POST /execute HTTP/1.1\r\nHost: x\r\n");  // ...and never the rest
  EXPECT_TRUE(client.wait_for_close()) << "the server kept a stalled connection open";
  const auto waited = std::chrono::steady_clock::now() - started;
  EXPECT_GE(waited, 250ms);
  EXPECT_LT(waited, 5s);
}

TEST(HttpServer, SilentConnectionIsDisconnectedAfterTheReadTimeout) {
  Config config = test_config();
  config.read_timeout_ms = 300;
  ServerHarness harness(config);
  Client client(harness.port);
  const auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(client.wait_for_close());
  EXPECT_GE(std::chrono::steady_clock::now() - started, 250ms);
}

TEST(HttpServer, IdleKeepAliveConnectionIsClosedAfterTheIdleTimeout) {
  Config config = test_config();
  config.idle_timeout_ms = 300;
  ServerHarness harness(config);
  Client client(harness.port);
  EXPECT_EQ(client.send(make_request(http::verb::get, "/healthz")).result_int(), 200u);
  const auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(client.wait_for_close());
  const auto waited = std::chrono::steady_clock::now() - started;
  EXPECT_GE(waited, 250ms);
  EXPECT_LT(waited, 5s);
}

TEST(HttpServer, MalformedRequestIs400ThenClose) {
  ServerHarness harness;
  Client client(harness.port);
  client.write_raw("GET / HTTP/1.1\r\nBad Header\r\n\r\n");
  const auto response = client.read();
  EXPECT_EQ(response.result_int(), 400u);
  EXPECT_EQ(json_of(response).at("error_type").as_string(), "invalid_request");
  EXPECT_TRUE(client.wait_for_close());
}

TEST(HttpServer, OversizedHeaderIs431ThenClose) {
  ServerHarness harness;
  Client client(harness.port);
  auto request = make_request(http::verb::get, "/healthz");
  request.set("X-Padding", std::string(20000, 'p'));
  const auto response = client.send(request);
  EXPECT_EQ(response.result_int(), 431u);
  EXPECT_TRUE(client.wait_for_close());
}

TEST(HttpServer, Http10ClosesAfterTheResponse) {
  ServerHarness harness;
  Client client(harness.port);
  auto request = make_request(http::verb::get, "/healthz");
  request.version(10);
  const auto response = client.send(request);
  EXPECT_EQ(response.result_int(), 200u);
  EXPECT_EQ(response.version(), 10u);
  EXPECT_TRUE(client.wait_for_close());
}

TEST(HttpServer, HeadHasHeadersButNoBody) {
  ServerHarness harness;
  Client client(harness.port);
  const auto head = client.send(make_request(http::verb::head, "/healthz"));
  EXPECT_EQ(head.result_int(), 200u);
  EXPECT_TRUE(head.body().empty());
  EXPECT_NE(head[http::field::content_length], "0");
  // Had the server sent a body anyway, this response would be garbage.
  const auto get = client.send(make_request(http::verb::get, "/healthz"));
  EXPECT_EQ(get.result_int(), 200u);
  EXPECT_EQ(get[http::field::content_length], head[http::field::content_length]);
}

TEST(HttpServer, MetricsExposeCountersAndHistograms) {
  ServerHarness harness;
  Client client(harness.port);
  EXPECT_EQ(client.send(execute_request("measured")).result_int(), 200u);
  EXPECT_EQ(client.send(make_request(http::verb::get, "/nope")).result_int(), 404u);
  const auto response = client.send(make_request(http::verb::get, "/metrics"));
  EXPECT_EQ(response.result_int(), 200u);
  EXPECT_EQ(response[http::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
  const std::string& text = response.body();
  for (const char* needle :
       {R"(pysandbox_requests_total{route="/execute",status="200",error_type="ok"} 1)",
        R"(pysandbox_requests_total{route="other",status="404",error_type="not_found"} 1)",
        R"(pysandbox_phase_duration_seconds_count{phase="queue"} 1)",
        R"(pysandbox_phase_duration_seconds_count{phase="spawn"} 1)",
        R"(pysandbox_phase_duration_seconds_count{phase="run"} 1)",
        R"(pysandbox_phase_duration_seconds_count{phase="teardown"} 1)",
        R"(pysandbox_phase_duration_seconds_count{phase="total"} 1)", "pysandbox_in_flight 0",
        "pysandbox_queued 0", "pysandbox_connections 1",
        R"(pysandbox_isolation_info{mode="namespaces"} 1)"}) {
    EXPECT_NE(text.find(needle), std::string::npos) << needle << "\n" << text;
  }
}

TEST(HttpServer, ConnectionsBeyondTheLimitGet503WhenNoneIsIdle) {
  Config config = test_config();
  config.max_connections = 2;
  ServerHarness harness(config);
  // Both connections busy: nothing to evict.
  std::vector<std::future<ClientResponse>> busy;
  for (int i = 0; i < 2; ++i) {
    busy.push_back(std::async(std::launch::async, [&harness] {
      Client client(harness.port);
      return client.send(execute_request("wait"));
    }));
  }
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (harness.executor.running() < 2) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline);
    std::this_thread::yield();
  }
  Client third(harness.port);
  std::string received;
  EXPECT_TRUE(third.wait_for_close(&received));
  EXPECT_TRUE(received.starts_with("HTTP/1.1 503")) << received;
  EXPECT_NE(received.find("unavailable"), std::string::npos) << received;
  harness.executor.open_gate();
  for (auto& response : busy) EXPECT_EQ(response.get().result_int(), 200u);
}

TEST(HttpServer, AtTheCapTheLongestIdleConnectionMakesRoom) {
  Config config = test_config();
  config.max_connections = 2;
  ServerHarness harness(config);
  Client oldest(harness.port);
  EXPECT_EQ(oldest.send(make_request(http::verb::get, "/healthz")).result_int(), 200u);
  Client newer(harness.port);
  EXPECT_EQ(newer.send(make_request(http::verb::get, "/healthz")).result_int(), 200u);
  // A third connection is served, and the connection idle the longest pays for it.
  Client third(harness.port);
  EXPECT_EQ(third.send(make_request(http::verb::get, "/healthz")).result_int(), 200u);
  EXPECT_TRUE(oldest.wait_for_close()) << "the oldest idle connection was not closed";
  EXPECT_EQ(newer.send(make_request(http::verb::get, "/healthz")).result_int(), 200u);
  const auto metrics = third.send(make_request(http::verb::get, "/metrics")).body();
  EXPECT_NE(metrics.find(R"(pysandbox_connections_closed_total{reason="evicted"} 1)"),
            std::string::npos)
      << metrics;
}

TEST(HttpServer, ASilentNewConnectionCanBeEvictedToo) {
  Config config = test_config();
  config.max_connections = 1;
  ServerHarness harness(config);
  Client silent(harness.port);  // never sends a byte: idle since it was accepted
  Client user(harness.port);
  EXPECT_EQ(user.send(make_request(http::verb::get, "/healthz")).result_int(), 200u);
  EXPECT_TRUE(silent.wait_for_close());
}

TEST(HttpServer, DrainFinishesInFlightWorkAndRefusesNewWork) {
  ServerHarness harness;
  // A: a run in flight when the drain starts.
  auto in_flight = std::async(std::launch::async, [&harness] {
    Client client(harness.port);
    return client.send(execute_request("wait"));
  });
  wait_for_admission(harness.port, [](const auto& a) { return u64(a.at("in_flight")) == 1; });
  // B: an idle kept-alive connection.
  Client idle(harness.port);
  EXPECT_EQ(idle.send(make_request(http::verb::get, "/healthz")).result_int(), 200u);
  // C and D: requests whose header was accepted (100 Continue) but whose body comes later.
  const std::string late_body = R"({"script":"x"})";
  Client late_execute(harness.port);
  late_execute.write_raw(
      "POST /execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Expect: 100-continue\r\nContent-Length: " +
      std::to_string(late_body.size()) + "\r\n\r\n");
  EXPECT_EQ(late_execute.read().result_int(), 100u);
  Client late_health(harness.port);
  late_health.write_raw(
      "GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
      "Content-Length: 1\r\n\r\n");
  EXPECT_EQ(late_health.read().result_int(), 100u);

  harness.stop();

  EXPECT_TRUE(Client::try_connect(harness.port).failed()) << "a new connection was accepted";
  EXPECT_TRUE(idle.wait_for_close()) << "idle connection not closed by the drain";

  late_execute.write_raw(late_body);
  const auto unavailable = late_execute.read();
  EXPECT_EQ(unavailable.result_int(), 503u);
  EXPECT_EQ(json_of(unavailable).at("error_type").as_string(), "unavailable");
  EXPECT_FALSE(unavailable.keep_alive());

  late_health.write_raw("x");
  const auto draining = late_health.read();
  EXPECT_EQ(draining.result_int(), 503u);
  EXPECT_EQ(json_of(draining).at("status").as_string(), "draining");

  harness.executor.open_gate();
  const auto finished = in_flight.get();
  EXPECT_EQ(finished.result_int(), 200u);
  EXPECT_EQ(json_of(finished).at("stdout").as_string(), "wait");
  EXPECT_FALSE(finished.keep_alive()) << "responses during a drain must carry Connection: close";

  harness.join();  // io.run() returns once every connection is gone
  EXPECT_TRUE(harness.server->stopped_cleanly());
  const std::string log = harness.log.str();
  EXPECT_NE(log.find(R"("event":"drain_start")"), std::string::npos) << log;
  EXPECT_NE(log.find(R"("clean":true)"), std::string::npos) << log;
}

TEST(HttpServer, DrainTimeoutStopsTheServerAnyway) {
  Config config = test_config();
  config.drain_timeout_ms = 200;
  ServerHarness harness(config);
  auto stuck = std::async(std::launch::async, [&harness]() -> std::string {
    try {
      Client client(harness.port);
      return std::to_string(client.send(execute_request("wait")).result_int());
    } catch (const std::exception& e) {
      return e.what();
    }
  });
  wait_for_admission(harness.port, [](const auto& a) { return u64(a.at("in_flight")) == 1; });
  const auto started = std::chrono::steady_clock::now();
  harness.stop();
  harness.join();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  EXPECT_FALSE(harness.server->stopped_cleanly());
  // The io_context is stopped, not destroyed: the stuck connection closes only when the
  // io_context (holding its session) is destroyed.
  harness.destroy();
  EXPECT_NE(stuck.get(), "200");
}

}  // namespace
}  // namespace pysandbox::beast_server
