// The listener: binds, accepts (bounded by max_connections), runs one session coroutine per
// connection, and shuts down gracefully on SIGTERM/SIGINT or request_stop().
//
// Connections: at most the file-descriptor budget's cap (fd_budget.hpp); at the cap a new one
// closes the connection idle the longest, or is answered 503 if none is idle.
//
// Signals: SIGTERM, SIGINT and SIGQUIT drain; SIGHUP, SIGUSR1 and SIGUSR2 are logged and
// ignored (nothing to reload or reopen).
//
// Shutdown: the first draining signal starts a drain (acceptor closed, /execute and /healthz answer
// 503, idle keep-alive connections closed, busy ones finish with Connection: close); when the last
// connection is gone, or after drain_timeout_ms, the io_context is stopped. A second signal
// during the drain stops the io_context at once (stopped_cleanly() is then false).
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>

#include "beast_server/config.hpp"
#include "beast_server/fd_budget.hpp"
#include "executor/executor.hpp"

namespace boost::asio {
class io_context;
}

namespace pysandbox::beast_server {

struct ServerState;

class Server {
 public:
  // Everything runs on `io`'s (single) thread. `executor` must outlive io.run(); request log
  // lines and events go to `log`.
  Server(boost::asio::io_context& io, Config config, executor::Executor& executor,
         std::ostream& log);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens on config.listen_address:config.port and plans the file-descriptor
  // budget; returns the bound port (the ephemeral one for port 0). Throws std::runtime_error
  // naming the address, or saying why the descriptor limit is too low.
  std::uint16_t listen();

  // The budget listen() planned.
  const FdPlan& fd_plan() const;

  // Starts accepting (and, if handle_signals, handles the signals above). Call once, after
  // listen().
  void start(bool handle_signals);

  // Begins the graceful drain, as SIGTERM does; idempotent. Call on the io_context's thread
  // (net::post it from elsewhere).
  void request_stop();

  // Stops the io_context now, as a second SIGTERM does.
  void force_stop();

  // After io.run() returned: true if a drain completed with every connection finished.
  bool stopped_cleanly() const;
  bool draining() const;

 private:
  std::shared_ptr<ServerState> state_;
};

}  // namespace pysandbox::beast_server
