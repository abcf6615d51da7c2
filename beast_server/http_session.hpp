// One HTTP/1.1 connection: keep-alive request loop with per-phase deadlines, 100-continue,
// body limits, RFC 9112 framing and Host checks (a request whose body length is in doubt is
// refused and the connection closed), and the drain protocol (idle connections are closed, busy
// ones answer with Connection: close). While a request waits for a sandbox or runs, the socket
// is read: a client that goes away cancels its request.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <memory>

namespace pysandbox::beast_server {

struct ServerState;

// Largest request header accepted (request line + fields); beyond it 431 and close.
inline constexpr std::uint32_t kHeaderLimit = 16 * 1024;

// Serves the connection until the client leaves, a deadline passes, an error closes it, or a
// drain ends it. Never throws: unexpected exceptions are logged and close the connection.
boost::asio::awaitable<void> run_http_session(std::shared_ptr<ServerState> state,
                                              boost::asio::ip::tcp::socket socket);

}  // namespace pysandbox::beast_server
