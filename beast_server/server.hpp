// The listener: binds, accepts (bounded by max_connections), runs one session coroutine per
// connection, and shuts down gracefully on SIGTERM/SIGINT or request_stop().
//
// Shutdown: the first signal starts a drain (acceptor closed, /execute and /healthz answer 503,
// idle keep-alive connections closed, busy ones finish with Connection: close); when the last
// connection is gone, or after drain_timeout_ms, the io_context is stopped. A second signal
// during the drain stops the io_context at once (stopped_cleanly() is then false).
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>

#include "beast_server/config.hpp"
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

  // Binds and listens on config.listen_address:config.port; returns the bound port (the
  // ephemeral one for port 0). Throws std::runtime_error naming the address.
  std::uint16_t listen();

  // Starts accepting (and, if handle_signals, turns SIGINT/SIGTERM into a drain). Call once,
  // after listen().
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
