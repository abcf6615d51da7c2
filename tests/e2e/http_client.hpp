// A minimal synchronous HTTP/1.1 client for the end-to-end tests.
#pragma once

#include <boost/json/value.hpp>
#include <map>
#include <optional>
#include <string>

namespace pysandbox::e2e {

struct HttpResponse {
  unsigned status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  boost::json::value json() const;  // parse of body (null if not JSON)
  std::string header(const std::string& name) const;
};

struct HttpRequest {
  std::string method = "GET";
  std::string target = "/";
  std::string body;
  std::map<std::string, std::string> headers;
};

// One request on a fresh connection; 0-status response on a transport error.
HttpResponse http(unsigned short port, const HttpRequest& request, int timeout_ms = 60000);

// POST /execute with {"script": script} plus `extra` fields (a JSON object text, may be empty).
HttpResponse execute(unsigned short port, const std::string& script,
                     const std::string& extra_fields = "");

// A kept-alive connection for several requests.
class HttpConnection {
 public:
  explicit HttpConnection(unsigned short port);
  ~HttpConnection();
  HttpResponse send(const HttpRequest& request);
  // True when the server has closed the connection (a read returns EOF), waiting up to
  // timeout_ms for it.
  bool closed_by_server(int timeout_ms);
  int native_handle() const;

 private:
  struct Impl;
  Impl* impl_;
};

// JSON-quotes a string.
std::string quote(const std::string& s);

}  // namespace pysandbox::e2e
