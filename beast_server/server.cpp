#include "beast_server/server.hpp"

#include <fcntl.h>
#include <signal.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http/write.hpp>
#include <chrono>
#include <exception>
#include <sstream>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "beast_server/http_session.hpp"
#include "beast_server/request_id.hpp"
#include "beast_server/response.hpp"
#include "beast_server/server_state.hpp"

namespace pysandbox::beast_server {

namespace {

// After a failed accept (ENOBUFS, ENOMEM...), wait before retrying rather than spin.
constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);
// At most one accept_error line per this period; the others are counted into the next.
constexpr auto kAcceptErrorLogPeriod = std::chrono::seconds(1);
// Connections told to close (evicted) keep their descriptor until their session notices; past
// this many of them a new connection is refused rather than admitted.
constexpr std::size_t kEvictionSlack = 16;

// Completion of a detached coroutine: an escaped exception is logged, never rethrown into
// io.run() (which would end the server).
auto log_failure(std::shared_ptr<ServerState> state, std::string what) {
  return [state = std::move(state), what = std::move(what)](std::exception_ptr error) {
    if (!error) return;
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      state->log.event("coroutine_error", {{"coroutine", what}, {"error", e.what()}});
    } catch (...) {
      state->log.event("coroutine_error", {{"coroutine", what}, {"error", "unknown exception"}});
    }
  };
}

boost::json::object load(const ServerState& state) {
  return {{"in_flight", state.admission.in_flight()},
          {"queued", state.admission.queued()},
          {"connections", state.connections.size()}};
}

void stop_now(ServerState& state, std::string_view reason) {
  state.forced = true;
  auto fields = load(state);
  fields["reason"] = reason;
  state.log.event("forced_stop", std::move(fields));
  state.io.stop();
}

net::awaitable<void> drain(std::shared_ptr<ServerState> state) {
  const auto started = std::chrono::steady_clock::now();
  if (!state->connections.empty()) {
    state->drain_timer.expires_after(std::chrono::milliseconds(state->config.drain_timeout_ms));
    // Raw pointer: the callback lives inside the state it points to.
    ServerState* raw = state.get();
    state->connections.on_empty([raw] { raw->drain_timer.cancel(); });
    co_await state->drain_timer.async_wait();
    state->connections.on_empty(nullptr);
  }
  state->drain_timed_out = !state->connections.empty();
  auto fields = load(*state);
  fields["clean"] = !state->drain_timed_out;
  fields["elapsed_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - started)
                             .count();
  state->log.event("drain_end", std::move(fields));
  if (state->signals) {
    beast::error_code ignored;
    state->signals->cancel(ignored);
  }
  // The executor may keep background work (pools) on the io_context: stop it explicitly.
  state->io.stop();
}

void begin_drain(const std::shared_ptr<ServerState>& state, std::string_view reason) {
  if (state->handler.draining()) return;
  state->handler.set_draining();
  beast::error_code ignored;
  state->acceptor.close(ignored);
  auto fields = load(*state);
  fields["reason"] = reason;
  state->log.event("drain_start", std::move(fields));
  state->connections.close_idle();
  net::co_spawn(state->io, drain(state), log_failure(state, "drain"));
}

// The refusal's bytes with a placeholder request id, rendered once: a refusal happens when
// connections (or descriptors) run out, and then should cost nothing but a copy and a write.
struct CannedRefusal {
  std::string bytes;
  std::vector<std::size_t> id_offsets;
};

const CannedRefusal& canned_refusal() {
  static const CannedRefusal refusal = [] {
    const std::string placeholder(16, '0');  // generate_request_id()'s length
    Response response = make_http_response(
        error_response(503, "unavailable", "Too many open connections; retry later.", placeholder),
        11);
    response.set(http::field::server, "pysandboxd");
    response.set("X-Request-Id", placeholder);
    response.set(http::field::cache_control, "no-store");
    response.set(http::field::retry_after, "1");
    response.keep_alive(false);
    response.prepare_payload();
    std::ostringstream text;
    text << response;
    CannedRefusal out{text.str(), {}};
    for (auto at = out.bytes.find(placeholder); at != std::string::npos;
         at = out.bytes.find(placeholder, at + placeholder.size())) {
      out.id_offsets.push_back(at);
    }
    return out;
  }();
  return refusal;
}

// Over the connection cap (or out of descriptors): the canned 503, written without blocking (a
// fresh socket's send buffer always takes it), then close. No coroutine, so a connection flood
// costs no memory.
void refuse_connection(ServerState& state, net::ip::tcp::socket& socket) {
  state.metrics.connection_refused();
  const CannedRefusal& canned = canned_refusal();
  std::string bytes = canned.bytes;
  const std::string request_id = generate_request_id();
  for (const std::size_t at : canned.id_offsets) bytes.replace(at, request_id.size(), request_id);
  beast::error_code ignored;
  socket.non_blocking(true, ignored);
  socket.write_some(net::buffer(bytes), ignored);
  socket.shutdown(net::ip::tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
}

void log_accept_error(ServerState& state, const beast::error_code& ec) {
  ++state.accept_errors_unlogged;
  const auto now = std::chrono::steady_clock::now();
  if (now - state.accept_error_logged < kAcceptErrorLogPeriod) return;
  state.accept_error_logged = now;
  state.log.event("accept_error",
                  {{"error", ec.message()}, {"count", state.accept_errors_unlogged}});
  state.accept_errors_unlogged = 0;
}

bool out_of_descriptors(const beast::error_code& ec) {
  return ec == net::error::no_descriptors || ec.value() == ENFILE;
}

// Out of descriptors although the budget should have prevented it (something else holds
// them): the spare one, released, takes the waiting connection off the backlog to refuse it,
// so that the client gets a 503 instead of a hang. False if there was no spare to use.
bool refuse_with_spare_fd(ServerState& state) {
  if (!state.spare_fd) return false;
  state.spare_fd.reset();
  beast::error_code ec;
  net::ip::tcp::socket socket = state.acceptor.accept(ec);
  if (!ec) refuse_connection(state, socket);
  state.spare_fd.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  return true;
}

// Whether a new connection may be served: under the cap, or at it after closing the connection
// idle the longest.
bool make_room(ServerState& state) {
  auto& connections = state.connections;
  const std::size_t cap = state.fds.max_connections;
  if (connections.size() - connections.closing() < cap) return true;
  if (connections.size() >= cap + kEvictionSlack) return false;
  if (!connections.evict_oldest_idle()) return false;
  state.metrics.connection_closed(CloseReason::kEvicted);
  return true;
}

void serve(const std::shared_ptr<ServerState>& state, net::ip::tcp::socket socket) {
  if (!make_room(*state)) {
    refuse_connection(*state, socket);
    return;
  }
  beast::error_code ignored;
  socket.set_option(net::ip::tcp::no_delay(true), ignored);
  net::co_spawn(state->io, run_http_session(state, std::move(socket)),
                log_failure(state, "session"));
}

net::awaitable<void> accept_loop(std::shared_ptr<ServerState> state) {
  for (;;) {
    auto [ec, socket] = co_await state->acceptor.async_accept();
    if (!ec) {
      serve(state, net::ip::tcp::socket(std::move(socket)));
      continue;
    }
    if (ec == net::error::operation_aborted || !state->acceptor.is_open()) co_return;
    log_accept_error(*state, ec);
    if (out_of_descriptors(ec)) {
      // accept() reports EMFILE whether or not a connection waits (the descriptor is taken
      // first): wait for one, then try again before falling back on the spare descriptor.
      auto [wait_ec] = co_await state->acceptor.async_wait(net::socket_base::wait_read);
      if (wait_ec == net::error::operation_aborted || !state->acceptor.is_open()) co_return;
      beast::error_code again;
      net::ip::tcp::socket accepted = state->acceptor.accept(again);
      if (!again) {
        serve(state, std::move(accepted));
        continue;
      }
      if (out_of_descriptors(again) && refuse_with_spare_fd(*state)) continue;
    }
    Timer backoff(state->io, kAcceptBackoff);
    co_await backoff.async_wait();
  }
}

net::awaitable<void> signal_loop(std::shared_ptr<ServerState> state) {
  for (;;) {
    auto [ec, signal] = co_await state->signals->async_wait();
    if (ec) co_return;
    const std::string name = signal_name(signal);
    if (signal == SIGHUP || signal == SIGUSR1 || signal == SIGUSR2) {
      // Deliberately ignored (their default action would end the server at once, sandboxes and
      // all): there is no configuration to reload and no log file to reopen.
      state->log.event(
          "signal_ignored",
          {{"signal", name}, {"reason", "no reload or log reopening; SIGTERM drains"}});
      continue;
    }
    if (!state->handler.draining()) {
      begin_drain(state, name);
    } else {
      stop_now(*state, "second " + name + " during drain");
      co_return;
    }
  }
}

}  // namespace

Server::Server(net::io_context& io, Config config, executor::Executor& executor, std::ostream& log)
    : state_(std::make_shared<ServerState>(io, std::move(config), executor, log)) {}

Server::~Server() {
  // Pending operations keep the state alive; closing here lets them finish promptly if the
  // io_context runs again, and releases the port and the signal handlers now.
  beast::error_code ignored;
  state_->acceptor.close(ignored);
  if (state_->signals) state_->signals->cancel(ignored);
}

std::uint16_t Server::listen() {
  const Config& config = state_->config;
  try {
    const net::ip::tcp::endpoint endpoint{net::ip::make_address(config.listen_address),
                                          config.port};
    auto& acceptor = state_->acceptor;
    acceptor.open(endpoint.protocol());
    acceptor.set_option(net::socket_base::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen(net::socket_base::max_listen_connections);
    // The sync accept() of refuse_with_spare_fd must not block.
    acceptor.non_blocking(true);
  } catch (const boost::system::system_error& e) {
    throw std::runtime_error("cannot listen on " + config.listen_address + ":" +
                             std::to_string(config.port) + ": " + e.code().message());
  }
  state_->spare_fd.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  // Rendered now, not at the first refusal: that may come when nothing else can be allocated.
  (void)canned_refusal();
  // Counted once everything of the server's own is open (the spare descriptor included); the
  // warm pool's zygotes may still be starting, so they are reserved for instead.
  const unsigned zygotes = config.executor.pool ? 2 * config.executor.pool_size : 0;
  auto plan = plan_fd_budget(nofile_limit(), count_open_fds(), config.max_concurrency, zygotes,
                             config.max_connections);
  if (auto* error = std::get_if<std::string>(&plan)) throw std::runtime_error(*error);
  state_->fds = std::get<FdPlan>(plan);
  return state_->acceptor.local_endpoint().port();
}

const FdPlan& Server::fd_plan() const { return state_->fds; }

void Server::start(bool handle_signals) {
  if (handle_signals) {
    // SIGINT, SIGTERM and SIGQUIT drain; SIGHUP, SIGUSR1 and SIGUSR2 are logged and ignored.
    state_->signals.emplace(state_->io, SIGINT, SIGTERM, SIGQUIT);
    state_->signals->add(SIGHUP);
    state_->signals->add(SIGUSR1);
    state_->signals->add(SIGUSR2);
    net::co_spawn(state_->io, signal_loop(state_), log_failure(state_, "signals"));
  }
  net::co_spawn(state_->io, accept_loop(state_), log_failure(state_, "accept"));
}

void Server::request_stop() { begin_drain(state_, "request"); }

void Server::force_stop() { stop_now(*state_, "request"); }

bool Server::stopped_cleanly() const {
  return state_->handler.draining() && !state_->forced && !state_->drain_timed_out;
}

bool Server::draining() const { return state_->handler.draining(); }

}  // namespace pysandbox::beast_server
