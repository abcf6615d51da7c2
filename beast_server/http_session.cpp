#include "beast_server/http_session.hpp"

#include <array>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <chrono>
#include <exception>
#include <optional>
#include <string>

#include "beast_server/request_id.hpp"
#include "beast_server/response.hpp"
#include "beast_server/server_state.hpp"

namespace pysandbox::beast_server {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kReadChunk = 4096;
// After an error response the client may still be sending a body we will not read. Closing with
// unread data makes the kernel send RST, which can destroy our response before the client reads
// it; so shut down our side and discard input for a bounded time and amount first.
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr std::size_t kLingerBytes = 4u << 20;

// The peer left or a deadline closed the stream: there is nobody to answer.
bool is_disconnect(const beast::error_code& ec) {
  return ec == net::error::eof || ec == net::error::connection_reset ||
         ec == net::error::broken_pipe || ec == net::error::operation_aborted ||
         ec == net::error::bad_descriptor || ec == beast::error::timeout ||
         ec == http::error::end_of_stream || ec == http::error::partial_message;
}

double elapsed_ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

template <class Socket>
std::string describe_endpoint(const Socket& socket) {
  beast::error_code ec;
  const auto endpoint = socket.remote_endpoint(ec);
  if (ec) return "unknown";
  const auto address = endpoint.address();
  return (address.is_v6() ? "[" + address.to_string() + "]" : address.to_string()) + ":" +
         std::to_string(endpoint.port());
}

class HttpSession {
 public:
  HttpSession(std::shared_ptr<ServerState> state, net::ip::tcp::socket socket)
      : state_(std::move(state)), stream_(std::move(socket)) {
    remote_ = describe_endpoint(stream_.socket());
    // Lets a drain close this connection while it waits for a request.
    registration_ = state_->connections.add([this] { stream_.cancel(); });
  }
  ~HttpSession() { state_->connections.remove(registration_); }
  HttpSession(const HttpSession&) = delete;
  HttpSession& operator=(const HttpSession&) = delete;

  net::awaitable<void> run();

 private:
  enum class Next { kContinue, kClose, kLingerClose };

  net::awaitable<Next> serve_one(bool first);
  // Adds the common headers, writes, then records the request in metrics and log.
  net::awaitable<bool> send(Response& response, RequestRecord& record, bool keep_alive, bool head,
                            Clock::time_point started);
  // Answers with an error and asks for a lingering close.
  net::awaitable<Next> fail(const JsonResponse& json, RequestRecord& record, unsigned version,
                            Clock::time_point started);
  net::awaitable<void> linger_close();

  const Config& config() const { return state_->config; }

  std::shared_ptr<ServerState> state_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::string remote_;
  ConnectionRegistry::Handle registration_;
};

net::awaitable<void> HttpSession::run() {
  try {
    for (bool first = true;; first = false) {
      const Next next = co_await serve_one(first);
      if (next == Next::kContinue) continue;
      if (next == Next::kLingerClose) co_await linger_close();
      break;
    }
  } catch (const std::exception& e) {
    state_->log.event("session_error", {{"remote", remote_}, {"error", e.what()}});
  }
  beast::error_code ignored;
  stream_.socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
  stream_.close();
}

net::awaitable<HttpSession::Next> HttpSession::serve_one(bool first) {
  const auto read_timeout = std::chrono::milliseconds(config().read_timeout_ms);
  const auto write_timeout = std::chrono::milliseconds(config().write_timeout_ms);

  // Between requests: the only state in which a drain may close the connection.
  ConnectionRegistry::set_phase(registration_, ConnectionRegistry::Phase::kIdle);
  if (state_->handler.draining()) co_return Next::kClose;
  if (buffer_.size() == 0) {
    // An idle connection should not keep the capacity a large request left behind.
    buffer_.shrink_to_fit();
    // A new connection gets the read deadline for its first byte, a kept-alive one the idle
    // deadline; from the first byte on, the whole request must arrive within read_timeout.
    stream_.expires_after(first ? read_timeout
                                : std::chrono::milliseconds(config().idle_timeout_ms));
    auto [ec, n] = co_await stream_.async_read_some(buffer_.prepare(kReadChunk));
    if (ec) co_return Next::kClose;
    buffer_.commit(n);
  }
  ConnectionRegistry::set_phase(registration_, ConnectionRegistry::Phase::kBusy);

  RequestRecord record;
  record.remote = remote_;
  record.route = "other";
  stream_.expires_after(read_timeout);
  http::request_parser<http::string_body> parser;
  parser.header_limit(kHeaderLimit);
  // Content-Length is checked by hand once the whole header (and so X-Request-Id) is known;
  // the limit proper is set before the body is read and then covers chunked bodies too.
  parser.body_limit(boost::none);
  {
    auto [ec, n] = co_await http::async_read_header(stream_, buffer_, parser);
    if (ec) {
      if (is_disconnect(ec)) co_return Next::kClose;
      record.request_id = generate_request_id();
      if (ec == http::error::header_limit) {
        co_return co_await fail(
            error_response(431, "too_large",
                           "The request header exceeds " + std::to_string(kHeaderLimit) + " bytes.",
                           record.request_id),
            record, 11, Clock::now());
      }
      co_return co_await fail(
          error_response(400, "invalid_request", "Malformed HTTP request: " + ec.message() + ".",
                         record.request_id),
          record, 11, Clock::now());
    }
  }
  Clock::time_point started = Clock::now();

  Request& request = parser.get();
  const unsigned version = request.version();
  record.request_id = choose_request_id(request["X-Request-Id"]);
  record.method = std::string(request.method_string());
  record.target = std::string(request.target());
  const bool head = request.method() == http::verb::head;
  const bool expect_continue = beast::iequals(request[http::field::expect], "100-continue");
  const bool has_body = !parser.is_done();
  const auto content_length = parser.content_length();
  const bool body_too_large = content_length && *content_length > config().max_body_bytes;

  std::optional<Response> early = state_->handler.check_header(request, record);
  if (!early && body_too_large) {
    co_return co_await fail(
        error_response(413, "too_large",
                       "The request body is " + std::to_string(*content_length) +
                           " bytes; the limit is " + std::to_string(config().max_body_bytes) +
                           " bytes.",
                       record.request_id),
        record, version, started);
  }
  if (early) {
    // Refused on the header alone. A client that awaits 100 Continue will not send the body,
    // and an oversized body is not worth reading: answer and close. Otherwise read (and
    // drop) the body so that the connection stays usable.
    if (has_body && (expect_continue || body_too_large)) {
      co_await send(*early, record, false, head, started);
      co_return Next::kLingerClose;
    }
    bool keep_alive = request.keep_alive() && !state_->handler.draining();
    if (has_body) {
      parser.body_limit(config().max_body_bytes);
      auto [ec, n] = co_await http::async_read(stream_, buffer_, parser);
      if (ec) {
        if (is_disconnect(ec)) co_return Next::kClose;
        co_await send(*early, record, false, head, started);
        co_return Next::kLingerClose;
      }
    }
    const bool written = co_await send(*early, record, keep_alive, head, started);
    co_return (written && keep_alive) ? Next::kContinue : Next::kClose;
  }

  if (has_body) {
    if (expect_continue) {
      http::response<http::empty_body> proceed{http::status::continue_, version};
      stream_.expires_after(write_timeout);
      auto [ec, n] = co_await http::async_write(stream_, proceed);
      if (ec) co_return Next::kClose;
      // The client starts sending the body only now.
      stream_.expires_after(read_timeout);
    }
    parser.body_limit(config().max_body_bytes);
    auto [ec, n] = co_await http::async_read(stream_, buffer_, parser);
    if (ec == http::error::body_limit) {
      co_return co_await fail(
          error_response(
              413, "too_large",
              "The request body exceeds " + std::to_string(config().max_body_bytes) + " bytes.",
              record.request_id),
          record, version, started);
    }
    if (ec) {
      if (is_disconnect(ec)) co_return Next::kClose;
      co_return co_await fail(
          error_response(400, "invalid_request",
                         "Malformed HTTP request body: " + ec.message() + ".", record.request_id),
          record, version, started);
    }
  }

  // The run may take up to its timeout plus teardown: no socket deadline while it does.
  stream_.expires_never();
  started = Clock::now();
  Response response;
  bool threw = false;
  try {
    response = co_await state_->handler.handle(parser.get(), record);
  } catch (const std::exception& e) {
    record.detail = std::string("handler threw: ") + e.what();
    threw = true;
  }
  if (threw) {
    const JsonResponse json = internal_error_response(record.request_id);
    record.error_type = json.error_type;
    response = make_http_response(json, version);
  }
  const bool keep_alive = request.keep_alive() && !state_->handler.draining();
  const bool written = co_await send(response, record, keep_alive, head, started);
  co_return (written && keep_alive) ? Next::kContinue : Next::kClose;
}

net::awaitable<HttpSession::Next> HttpSession::fail(const JsonResponse& json, RequestRecord& record,
                                                    unsigned version, Clock::time_point started) {
  record.error_type = json.error_type;
  Response response = make_http_response(json, version);
  co_await send(response, record, false, false, started);
  co_return Next::kLingerClose;
}

net::awaitable<bool> HttpSession::send(Response& response, RequestRecord& record, bool keep_alive,
                                       bool head, Clock::time_point started) {
  response.set(http::field::server, "pysandboxd");
  response.set("X-Request-Id", record.request_id);
  // API answers are never cached; the IDE's files set their own policy.
  if (response.find(http::field::cache_control) == response.end()) {
    response.set(http::field::cache_control, "no-store");
  }
  response.keep_alive(keep_alive);
  response.prepare_payload();
  if (head) {
    // Same headers as GET, no body.
    const auto length = response.body().size();
    response.body().clear();
    response.content_length(length);
  }
  record.status = response.result_int();

  stream_.expires_after(std::chrono::milliseconds(config().write_timeout_ms));
  auto [ec, n] = co_await http::async_write(stream_, response);
  record.total_ms = elapsed_ms(started);
  state_->metrics.record(record);
  state_->log.request(record);
  co_return !ec;
}

net::awaitable<void> HttpSession::linger_close() {
  beast::error_code ignored;
  stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
  stream_.expires_after(kLingerTime);
  std::array<char, kReadChunk> scratch{};
  for (std::size_t drained = 0; drained < kLingerBytes;) {
    auto [ec, n] = co_await stream_.async_read_some(net::buffer(scratch));
    if (ec) break;
    drained += n;
  }
}

}  // namespace

net::awaitable<void> run_http_session(std::shared_ptr<ServerState> state,
                                      net::ip::tcp::socket socket) {
  HttpSession session(std::move(state), std::move(socket));
  co_await session.run();
}

}  // namespace pysandbox::beast_server
