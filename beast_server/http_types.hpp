// Asio/Beast types shared by the HTTP layer. as_tuple(use_awaitable) is the default completion
// token: every co_await yields an error_code to check instead of throwing, so a client that
// vanishes is an ordinary branch, not an exception.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace pysandbox::beast_server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

using Token = net::as_tuple_t<net::use_awaitable_t<>>;
using Stream = Token::as_default_on_t<beast::tcp_stream>;
using Acceptor = Token::as_default_on_t<net::ip::tcp::acceptor>;
using Timer = Token::as_default_on_t<net::steady_timer>;
using SignalSet = Token::as_default_on_t<net::signal_set>;

using Request = http::request<http::string_body>;
using RequestHeader = http::request_header<>;
using Response = http::response<http::string_body>;

}  // namespace pysandbox::beast_server
