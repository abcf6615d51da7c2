#include "tests/e2e/http_client.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <cstdlib>

namespace pysandbox::e2e {

namespace bhttp = boost::beast::http;
using boost::asio::ip::tcp;

boost::json::value HttpResponse::json() const {
  boost::system::error_code ec;
  auto v = boost::json::parse(body, ec);
  return ec ? boost::json::value() : v;
}

std::string HttpResponse::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

std::string quote(const std::string& s) { return boost::json::serialize(boost::json::string(s)); }

namespace {

// The whole recording may not grow past this: a bound, not a size anyone should reach.
constexpr off_t kMaxRecordBytes = off_t{512} << 20;

// With PYSANDBOX_E2E_RESPONSES set (CTest sets it for the e2e suite), every response is appended
// to that file as one JSON line, so that e2e.openapi.responses can check each against
// /openapi.json once the suite has run.
void record_response(const HttpRequest& request, const HttpResponse& response) {
  const char* path = std::getenv("PYSANDBOX_E2E_RESPONSES");
  if (path == nullptr || *path == '\0') return;
  const int fd = ::open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && st.st_size < kMaxRecordBytes) {
    const std::string line = boost::json::serialize(boost::json::object{
                                 {"method", request.method},
                                 {"target", request.target},
                                 {"status", response.status},
                                 {"content_type", response.header("content-type")},
                                 {"body", response.body},
                             }) +
                             "\n";
    // One write with O_APPEND: lines of concurrent tests do not interleave.
    [[maybe_unused]] const auto written = ::write(fd, line.data(), line.size());
  }
  ::close(fd);
}

}  // namespace

struct HttpConnection::Impl {
  boost::asio::io_context io;
  boost::beast::tcp_stream stream{io};
  boost::beast::flat_buffer buffer;
};

HttpConnection::HttpConnection(unsigned short port) : impl_(new Impl) {
  impl_->stream.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
}

HttpConnection::~HttpConnection() { delete impl_; }

int HttpConnection::native_handle() const { return impl_->stream.socket().native_handle(); }

HttpResponse HttpConnection::send(const HttpRequest& r) {
  bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(r.method), r.target, 11};
  req.set(bhttp::field::host, "127.0.0.1");
  for (const auto& [k, v] : r.headers) req.set(k, v);
  req.body() = r.body;
  req.prepare_payload();
  HttpResponse out;
  boost::system::error_code ec;
  bhttp::write(impl_->stream, req, ec);
  if (ec) return out;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(64 << 20);
  bhttp::read(impl_->stream, impl_->buffer, parser, ec);
  if (ec) return out;
  auto res = parser.release();
  out.status = res.result_int();
  for (const auto& f : res) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers[name] = std::string(f.value());
  }
  out.body = std::move(res.body());
  record_response(r, out);
  return out;
}

bool HttpConnection::closed_by_server(int timeout_ms) {
  pollfd p{native_handle(), POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return false;
  char c;
  return ::recv(native_handle(), &c, 1, MSG_PEEK) == 0;
}

HttpResponse http(unsigned short port, const HttpRequest& request, int timeout_ms) {
  HttpConnection c(port);
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ::setsockopt(c.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return c.send(request);
}

HttpResponse execute(unsigned short port, const std::string& script,
                     const std::string& extra_fields) {
  HttpRequest r;
  r.method = "POST";
  r.target = "/execute";
  r.headers["Content-Type"] = "application/json";
  r.body =
      "{\"script\": " + quote(script) + (extra_fields.empty() ? "" : ", " + extra_fields) + "}";
  return http(port, r);
}

}  // namespace pysandbox::e2e
