// Routing and the application logic behind each endpoint; knows nothing of sockets. The session
// asks it first about the header alone (so that a request that will be refused does not have
// its body read or get a 100 Continue), then for the response to the complete request.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <functional>
#include <optional>

#include "beast_server/admission.hpp"
#include "beast_server/config.hpp"
#include "beast_server/execute_request.hpp"
#include "beast_server/http_types.hpp"
#include "beast_server/metrics.hpp"
#include "beast_server/request_record.hpp"
#include "beast_server/response.hpp"
#include "beast_server/static_files.hpp"
#include "executor/executor.hpp"

namespace pysandbox::beast_server {

// The contract's JSON response as an HTTP message (status, Content-Type, extra headers, body).
// Common headers (X-Request-Id, Cache-Control, Connection) are the session's job.
Response make_http_response(const JsonResponse& json, unsigned version);

class RequestHandler {
 public:
  // All references must outlive the handler. connection_count feeds /healthz and /metrics.
  RequestHandler(const Config& config, executor::Executor& executor, Admission& admission,
                 Metrics& metrics, std::function<std::size_t()> connection_count);

  // What the header alone decides: 404 unknown path, 405 wrong method (with Allow), 503 for
  // /execute while draining, 415 for a body that is not application/json. Sets record.route
  // (and status/error_type when it answers).
  std::optional<Response> check_header(const RequestHeader& header, RequestRecord& record) const;

  // The response to a complete request that passed check_header. Never throws for the client's
  // or the script's faults; an exception from the executor becomes 500 `internal`.
  boost::asio::awaitable<Response> handle(const Request& request, RequestRecord& record);

  void set_draining() { draining_ = true; }
  bool draining() const { return draining_; }

  Gauges gauges() const;

 private:
  boost::asio::awaitable<Response> execute(const Request& request, RequestRecord& record);
  Response healthz(const Request& request, RequestRecord& record) const;
  Response metrics(const Request& request, RequestRecord& record) const;
  // The web IDE's files and the OpenAPI document (web_routes.cpp).
  Response static_file(const StaticFile& file, const Request& request, RequestRecord& record) const;
  Response openapi(const Request& request, RequestRecord& record) const;

  const Config& config_;
  executor::Executor& executor_;
  Admission& admission_;
  Metrics& metrics_;
  std::function<std::size_t()> connection_count_;
  RequestLimits limits_;
  StaticFiles web_;
  std::string openapi_json_;
  bool draining_ = false;
};

// "application/json", parameters (e.g. "; charset=utf-8") allowed, case-insensitive.
bool is_json_media_type(std::string_view content_type);

}  // namespace pysandbox::beast_server
