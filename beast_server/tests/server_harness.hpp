// The server in-process on 127.0.0.1:<ephemeral>, run by a background io thread with a fake
// executor, and blocking clients for it (each with its own io_context and a deadline, so that a
// server bug fails a test instead of hanging it). Shared by the HTTP test files.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "beast_server/config.hpp"
#include "beast_server/server.hpp"
#include "beast_server/tests/fake_executor.hpp"

namespace pysandbox::beast_server::testing {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using net::ip::tcp;
using namespace std::chrono_literals;
using ClientRequest = http::request<http::string_body>;
using ClientResponse = http::response<http::string_body>;

// No client operation may take longer; a hang becomes a failure.
inline constexpr auto kClientTimeout = 10s;

inline Config test_config() {
  Config config;
  config.listen_address = "127.0.0.1";
  config.port = 0;
  config.max_concurrency = 4;
  config.executor.max_concurrency = 4;
  config.queue_size = 64;
  config.queue_timeout_ms = 5000;
  config.read_timeout_ms = 2000;
  config.idle_timeout_ms = 5000;
  config.write_timeout_ms = 2000;
  config.drain_timeout_ms = 3000;
  config.max_body_bytes = 64 << 10;
  config.max_script_bytes = 16 << 10;
  return config;
}

class ServerHarness {
 public:
  explicit ServerHarness(Config config = test_config()) {
    executor.set_io(io->get_executor());
    server = std::make_unique<Server>(*io, std::move(config), executor, log);
    port = server->listen();
    server->start(/*handle_signals=*/false);
    thread = std::thread([this] { io->run(); });
  }

  ~ServerHarness() {
    if (thread.joinable()) {
      executor.open_gate();
      // Not stop(): if the server already stopped itself, nothing would run the posted drain.
      net::post(*io, [this] { server->request_stop(); });
      join();
    }
    destroy();
  }

  // Starts the drain and returns once it has begun (the acceptor is closed by then).
  void stop() {
    std::promise<void> done;
    net::post(*io, [&] {
      server->request_stop();
      done.set_value();
    });
    done.get_future().wait();
  }

  // Waits for io.run() to return; the log may be read afterwards.
  void join() { thread.join(); }

  // Destroys the server, then the io_context with whatever it still holds (after join()).
  void destroy() {
    server.reset();
    io.reset();
  }

  // Declared before io: run() frames destroyed by ~io_context still use it.
  FakeExecutor executor;
  std::ostringstream log;
  std::unique_ptr<net::io_context> io = std::make_unique<net::io_context>(1);
  std::unique_ptr<Server> server;
  std::uint16_t port = 0;
  std::thread thread;
};

inline ClientRequest make_request(http::verb method, std::string target, std::string body = "",
                                  std::string content_type = "application/json") {
  ClientRequest request{method, target, 11};
  request.set(http::field::host, "127.0.0.1");
  if (method == http::verb::post) request.set(http::field::content_type, content_type);
  request.body() = std::move(body);
  request.prepare_payload();
  return request;
}

inline ClientRequest execute_request(const std::string& script) {
  return make_request(http::verb::post, "/execute",
                      boost::json::serialize(boost::json::object{{"script", script}}));
}

inline std::uint64_t u64(const boost::json::value& value) {
  return value.to_number<std::uint64_t>();
}

inline boost::json::object json_of(const ClientResponse& response) {
  return boost::json::parse(response.body()).as_object();
}

class Client {
 public:
  // receive_buffer > 0 shrinks the socket's receive buffer first: a client that then does not
  // read leaves the server's write pending once the kernel's buffers are full.
  explicit Client(std::uint16_t port, int receive_buffer = 0) : stream_(io_) {
    if (receive_buffer > 0) {
      stream_.socket().open(tcp::v4());
      stream_.socket().set_option(net::socket_base::receive_buffer_size(receive_buffer));
    }
    const auto ec = connect(port);
    if (ec) throw std::runtime_error("connect: " + ec.message());
  }

  // A fresh connection attempt's outcome, for "new connections are refused".
  static beast::error_code try_connect(std::uint16_t port) {
    net::io_context io;
    beast::tcp_stream stream(io);
    beast::error_code result;
    stream.expires_after(kClientTimeout);
    stream.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
                         [&](beast::error_code ec) { result = ec; });
    io.run();
    return result;
  }

  ClientResponse send(ClientRequest request) {
    write(request);
    return read(request.method() == http::verb::head);
  }

  void write(ClientRequest& request) {
    beast::error_code result;
    stream_.expires_after(kClientTimeout);
    http::async_write(stream_, request, [&](beast::error_code ec, std::size_t) { result = ec; });
    run();
    if (result) throw std::runtime_error("write: " + result.message());
  }

  void write_raw(std::string_view bytes) {
    beast::error_code result;
    stream_.expires_after(kClientTimeout);
    net::async_write(stream_, net::buffer(bytes),
                     [&](beast::error_code ec, std::size_t) { result = ec; });
    run();
    if (result) throw std::runtime_error("write: " + result.message());
  }

  ClientResponse read(bool head = false) {
    http::response_parser<http::string_body> parser;
    parser.skip(head);
    parser.body_limit(16 << 20);
    beast::error_code result;
    stream_.expires_after(kClientTimeout);
    http::async_read(stream_, buffer_, parser,
                     [&](beast::error_code ec, std::size_t) { result = ec; });
    run();
    if (result) throw std::runtime_error("read: " + result.message());
    return parser.release();
  }

  // Reads until the server closes the connection (EOF or reset); false if it stayed open for
  // kClientTimeout. `received` gets whatever arrived before.
  bool wait_for_close(std::string* received = nullptr) {
    std::string data(static_cast<const char*>(buffer_.data().data()), buffer_.size());
    buffer_.consume(buffer_.size());
    beast::error_code result;
    std::array<char, 4096> chunk{};
    stream_.expires_after(kClientTimeout);
    for (;;) {
      std::size_t got = 0;
      stream_.async_read_some(net::buffer(chunk), [&](beast::error_code ec, std::size_t n) {
        result = ec;
        got = n;
      });
      run();
      data.append(chunk.data(), got);
      if (result) break;
    }
    if (received) *received = data;
    return result != beast::error::timeout;
  }

 private:
  beast::error_code connect(std::uint16_t port) {
    beast::error_code result;
    stream_.expires_after(kClientTimeout);
    stream_.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
                          [&](beast::error_code ec) { result = ec; });
    run();
    return result;
  }

  void run() {
    io_.restart();
    io_.run();
  }

  net::io_context io_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
};

inline boost::json::object healthz(std::uint16_t port) {
  Client client(port);
  return json_of(client.send(make_request(http::verb::get, "/healthz")));
}

// Polls /healthz until `predicate(admission)` holds (a state change on the server's thread that
// no response reveals directly); fails after 10 s.
inline void wait_for_admission(std::uint16_t port,
                               const std::function<bool(const boost::json::object&)>& predicate) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!predicate(healthz(port).at("admission").as_object())) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "admission state never reached";
    std::this_thread::sleep_for(5ms);
  }
}

inline void expect_common_headers(const ClientResponse& response) {
  EXPECT_EQ(response[http::field::content_type], "application/json");
  EXPECT_EQ(response[http::field::cache_control], "no-store");
  EXPECT_FALSE(response["X-Request-Id"].empty());
}

// The value of one series of GET /metrics (`series` with its labels, e.g.
// pysandbox_connections_closed_total{reason="evicted"}), or -1 if absent.
inline double metric(std::uint16_t port, const std::string& series) {
  Client client(port);
  const std::string text = client.send(make_request(http::verb::get, "/metrics")).body();
  const std::string needle = "\n" + series + " ";
  const auto at = text.find(needle);
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + needle.size()));
}

// Waits (bounded) until `predicate` holds; false if it never did within `limit`.
inline bool eventually(const std::function<bool()>& predicate,
                       std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!predicate()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace pysandbox::beast_server::testing
