#include "beast_server/http_session.hpp"

#include <array>
#include <boost/asio/experimental/awaitable_operators.hpp>
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

#include "beast_server/http_validation.hpp"
#include "beast_server/request_id.hpp"
#include "beast_server/response.hpp"
#include "beast_server/server_state.hpp"
#include "executor/cancel.hpp"

namespace pysandbox::beast_server {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kReadChunk = 4096;
// While a request runs, the socket is read to notice the client leaving; bytes of a pipelined
// next request are kept, up to this many (then reading, and watching, stops).
constexpr std::size_t kPipelinedBytes = 64u << 10;
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
    // Lets a drain, or the cap making room, close this connection while it waits for a request.
    registration_ = state_->connections.add([this] { stream_.cancel(); });
  }
  ~HttpSession() { state_->connections.remove(registration_); }
  HttpSession(const HttpSession&) = delete;
  HttpSession& operator=(const HttpSession&) = delete;

  net::awaitable<void> run();

 private:
  enum class Next { kContinue, kClose, kLingerClose };

  // One request being served: its parser, its log record and what its header said.
  struct Exchange {
    http::request_parser<http::string_body> parser;
    RequestRecord record;
    unsigned version = 11;
    bool head = false;
    bool has_body = false;  // the header announced a body, not read yet
    Clock::time_point started;
  };

  // One request from its first byte to its response, as steps: read the header, answer on the
  // header alone (refused), read the body, run and respond. A step that ends the request returns
  // what the connection does next.
  net::awaitable<Next> serve_one(bool first);
  net::awaitable<std::optional<Next>> read_header(Exchange& x);
  net::awaitable<Next> answer_early(Exchange& x, Response& early, bool skip_body);
  net::awaitable<std::optional<Next>> read_body(Exchange& x, bool expect_continue);
  net::awaitable<Next> run_and_respond(Exchange& x);
  // Adds the common headers, writes (holding `lease`, or room reserved now, in the response
  // budget until done), then records the request in metrics and log.
  net::awaitable<bool> send(Response& response, RequestRecord& record, bool keep_alive, bool head,
                            Clock::time_point started,
                            std::optional<ResponseBudget::Lease> lease = std::nullopt);
  // Waits for the first byte of the next request, skipping empty lines (RFC 9112 section 2.2);
  // false if the connection is to close.
  net::awaitable<bool> await_request(bool first);
  // Runs the handler while reading the socket: if the client goes away meanwhile, the request
  // is cancelled (it leaves the queue, or its sandbox is killed).
  net::awaitable<RequestHandler::Answer> handle_watching(const Request& request,
                                                         RequestRecord& record);
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

net::awaitable<bool> HttpSession::await_request(bool first) {
  // A new connection gets the read deadline for its first byte, a kept-alive one the idle
  // deadline; from the first byte on, the whole request must arrive within read_timeout.
  stream_.expires_after(first ? std::chrono::milliseconds(config().read_timeout_ms)
                              : std::chrono::milliseconds(config().idle_timeout_ms));
  for (;;) {
    const auto pending = buffer_.data();
    const BlankLines blank = leading_blank_lines(
        std::string_view(static_cast<const char*>(pending.data()), pending.size()));
    buffer_.consume(blank.skip);
    if (buffer_.size() > 0 && !blank.need_more) co_return true;
    // An idle connection should not keep the capacity a large request left behind.
    if (buffer_.size() == 0) buffer_.shrink_to_fit();
    auto [ec, n] = co_await stream_.async_read_some(buffer_.prepare(kReadChunk));
    if (ec) {
      if (ec == beast::error::timeout) {
        state_->metrics.connection_closed(first ? CloseReason::kReadTimeout
                                                : CloseReason::kIdleTimeout);
      }
      co_return false;
    }
    buffer_.commit(n);
  }
}

net::awaitable<HttpSession::Next> HttpSession::serve_one(bool first) {
  // Between requests: the only state in which a drain or an eviction may close the connection.
  ConnectionRegistry::set_phase(registration_, ConnectionRegistry::Phase::kIdle);
  if (state_->handler.draining()) co_return Next::kClose;
  if (!co_await await_request(first)) co_return Next::kClose;
  ConnectionRegistry::set_phase(registration_, ConnectionRegistry::Phase::kBusy);

  Exchange x;
  x.record.remote = remote_;
  x.record.route = "other";
  if (auto done = co_await read_header(x)) co_return *done;
  const Request& request = x.parser.get();
  const bool expect_continue = wants_continue(request);
  const auto content_length = x.parser.content_length();
  const bool body_too_large = content_length && *content_length > config().max_body_bytes;
  std::optional<Response> early = state_->handler.check_header(request, x.record);
  if (!early && body_too_large) {
    co_return co_await fail(
        error_response(413, "too_large",
                       "The request body is " + std::to_string(*content_length) +
                           " bytes; the limit is " + std::to_string(config().max_body_bytes) +
                           " bytes.",
                       x.record.request_id),
        x.record, x.version, x.started);
  }
  if (early) co_return co_await answer_early(x, *early, expect_continue || body_too_large);
  if (auto done = co_await read_body(x, expect_continue)) co_return *done;
  co_return co_await run_and_respond(x);
}

net::awaitable<std::optional<HttpSession::Next>> HttpSession::read_header(Exchange& x) {
  stream_.expires_after(std::chrono::milliseconds(config().read_timeout_ms));
  x.parser.header_limit(kHeaderLimit);
  // Content-Length is checked by hand once the whole header (and so X-Request-Id) is known;
  // the limit proper is set before the body is read and then covers chunked bodies too.
  x.parser.body_limit(boost::none);
  auto [ec, n] = co_await http::async_read_header(stream_, buffer_, x.parser);
  if (ec) {
    if (ec == beast::error::timeout) state_->metrics.connection_closed(CloseReason::kReadTimeout);
    if (is_disconnect(ec)) co_return Next::kClose;
    x.record.request_id = generate_request_id();
    if (ec == http::error::header_limit) {
      co_return co_await fail(
          error_response(431, "too_large",
                         "The request header exceeds " + std::to_string(kHeaderLimit) + " bytes.",
                         x.record.request_id),
          x.record, 11, Clock::now());
    }
    co_return co_await fail(
        error_response(400, "invalid_request", "Malformed HTTP request: " + ec.message() + ".",
                       x.record.request_id),
        x.record, 11, Clock::now());
  }
  x.started = Clock::now();
  const Request& request = x.parser.get();
  x.version = request.version();
  x.head = request.method() == http::verb::head;
  x.has_body = !x.parser.is_done();
  x.record.request_id = choose_request_id(request["X-Request-Id"]);
  x.record.method = std::string(request.method_string());
  x.record.target = std::string(request.target());
  // Framing (Transfer-Encoding, Content-Length) and Host: a request whose body length is in
  // doubt is never read on, since its bytes could be taken for another request.
  if (auto error = header_error(request)) {
    co_return co_await fail(
        error_response(400, "invalid_request", "Malformed HTTP request: " + *error,
                       x.record.request_id),
        x.record, x.version, x.started);
  }
  co_return std::nullopt;
}

net::awaitable<HttpSession::Next> HttpSession::answer_early(Exchange& x, Response& early,
                                                            bool skip_body) {
  // Refused on the header alone. A client that awaits 100 Continue will not send the body, and
  // an oversized body is not worth reading (`skip_body`): answer and close. Otherwise read (and
  // drop) the body so that the connection stays usable.
  if (x.has_body && skip_body) {
    co_await send(early, x.record, false, x.head, x.started);
    co_return Next::kLingerClose;
  }
  const bool keep_alive = x.parser.get().keep_alive() && !state_->handler.draining();
  if (x.has_body) {
    x.parser.body_limit(config().max_body_bytes);
    auto [ec, n] = co_await http::async_read(stream_, buffer_, x.parser);
    if (ec) {
      if (ec == beast::error::timeout) state_->metrics.connection_closed(CloseReason::kReadTimeout);
      if (is_disconnect(ec)) co_return Next::kClose;
      co_await send(early, x.record, false, x.head, x.started);
      co_return Next::kLingerClose;
    }
  }
  const bool written = co_await send(early, x.record, keep_alive, x.head, x.started);
  co_return (written && keep_alive) ? Next::kContinue : Next::kClose;
}

net::awaitable<std::optional<HttpSession::Next>> HttpSession::read_body(Exchange& x,
                                                                        bool expect_continue) {
  if (!x.has_body) co_return std::nullopt;
  const auto read_timeout = std::chrono::milliseconds(config().read_timeout_ms);
  if (expect_continue) {
    http::response<http::empty_body> proceed{http::status::continue_, x.version};
    stream_.expires_after(std::chrono::milliseconds(config().write_timeout_ms));
    auto [ec, n] = co_await http::async_write(stream_, proceed);
    if (ec) co_return Next::kClose;
    // The client starts sending the body only now.
    stream_.expires_after(read_timeout);
  }
  x.parser.body_limit(config().max_body_bytes);
  auto [ec, n] = co_await http::async_read(stream_, buffer_, x.parser);
  if (ec == http::error::body_limit) {
    co_return co_await fail(error_response(413, "too_large",
                                           "The request body exceeds " +
                                               std::to_string(config().max_body_bytes) + " bytes.",
                                           x.record.request_id),
                            x.record, x.version, x.started);
  }
  if (ec) {
    if (ec == beast::error::timeout) state_->metrics.connection_closed(CloseReason::kReadTimeout);
    if (is_disconnect(ec)) co_return Next::kClose;
    co_return co_await fail(
        error_response(400, "invalid_request", "Malformed HTTP request body: " + ec.message() + ".",
                       x.record.request_id),
        x.record, x.version, x.started);
  }
  co_return std::nullopt;
}

net::awaitable<HttpSession::Next> HttpSession::run_and_respond(Exchange& x) {
  // The run may take up to its timeout plus teardown: no socket deadline while it does.
  stream_.expires_never();
  const Clock::time_point started = Clock::now();
  RequestHandler::Answer answer = co_await handle_watching(x.parser.get(), x.record);
  if (x.record.abandoned) {
    // The client left while its request waited or ran: nothing to send, nobody to send it to.
    x.record.total_ms = elapsed_ms(started);
    state_->metrics.record(x.record);
    state_->log.request(x.record);
    co_return Next::kClose;
  }
  const bool keep_alive = x.parser.get().keep_alive() && !state_->handler.draining();
  const bool written = co_await send(answer.response, x.record, keep_alive, x.head, started,
                                     std::move(answer.lease));
  co_return (written && keep_alive) ? Next::kContinue : Next::kClose;
}

net::awaitable<RequestHandler::Answer> HttpSession::handle_watching(const Request& request,
                                                                    RequestRecord& record) {
  using namespace net::experimental::awaitable_operators;
  auto cancel = std::make_shared<executor::CancelSignal>();
  RequestHandler::Answer answer;
  bool finished = false;

  auto run = [&]() -> net::awaitable<void> {
    try {
      answer = co_await state_->handler.handle(request, record, cancel);
    } catch (const std::exception& e) {
      record.detail = std::string("handler threw: ") + e.what();
      const JsonResponse json = internal_error_response(record.request_id);
      record.status = json.status;
      record.error_type = json.error_type;
      answer = RequestHandler::Answer{make_http_response(json, request.version()), std::nullopt};
    }
    finished = true;
    // Ends the watch's pending read.
    stream_.cancel();
  };
  auto watch = [&]() -> net::awaitable<void> {
    while (!finished && buffer_.size() < kPipelinedBytes) {
      auto [ec, n] = co_await stream_.async_read_some(
          buffer_.prepare(std::min(kReadChunk, kPipelinedBytes - buffer_.size())));
      if (!ec) {
        buffer_.commit(n);
        continue;
      }
      if (!finished) {
        // EOF or an error from the client's side (a half-close counts: HTTP/1.1 clients do not
        // half-close while they still want the answer).
        cancel->cancel();
      }
      co_return;
    }
  };
  // Only /execute waits long enough for a departure to matter.
  if (record.route == "/execute") {
    co_await (run() && watch());
  } else {
    co_await run();
  }
  if (cancel->cancelled() && !record.abandoned) record.abandoned = "running";
  co_return answer;
}

net::awaitable<HttpSession::Next> HttpSession::fail(const JsonResponse& json, RequestRecord& record,
                                                    unsigned version, Clock::time_point started) {
  record.error_type = json.error_type;
  Response response = make_http_response(json, version);
  co_await send(response, record, false, false, started);
  co_return Next::kLingerClose;
}

net::awaitable<bool> HttpSession::send(Response& response, RequestRecord& record, bool keep_alive,
                                       bool head, Clock::time_point started,
                                       std::optional<ResponseBudget::Lease> lease) {
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
  // Small responses (errors, probes) are not worth waiting for: the connection cap bounds them.
  if (!lease) lease = state_->responses.force(response.body().size());

  stream_.expires_after(std::chrono::milliseconds(config().write_timeout_ms));
  auto [ec, n] = co_await http::async_write(stream_, response);
  if (ec == beast::error::timeout) {
    record.cut = true;
    state_->metrics.connection_closed(CloseReason::kWriteTimeout);
  } else if (ec) {
    record.abandoned = "writing";
  }
  lease.reset();
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
