// Routing and the application logic behind each endpoint; knows nothing of sockets. The session
// asks it first about the header alone (so that a request that will be refused does not have
// its body read or get a 100 Continue), then for the response to the complete request.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>

#include "beast_server/admission.hpp"
#include "beast_server/config.hpp"
#include "beast_server/execute_request.hpp"
#include "beast_server/fd_budget.hpp"
#include "beast_server/http_types.hpp"
#include "beast_server/metrics.hpp"
#include "beast_server/request_record.hpp"
#include "beast_server/response.hpp"
#include "beast_server/response_budget.hpp"
#include "beast_server/static_files.hpp"
#include "executor/cancel.hpp"
#include "executor/executor.hpp"

namespace pysandbox::beast_server {

// The contract's JSON response as an HTTP message (status, Content-Type, extra headers, body).
// Common headers (X-Request-Id, Cache-Control, Connection) are the session's job.
Response make_http_response(const JsonResponse& json, unsigned version);

class RequestHandler {
 public:
  // What the server shares with the handler besides the config and the executor. All of it
  // must outlive the handler; connection_count feeds /healthz and /metrics.
  struct Services {
    Admission& admission;
    Metrics& metrics;
    ResponseBudget& responses;
    const FdPlan& fds;
    std::function<std::size_t()> connection_count;
  };

  // A response and the room it holds in the response budget until it has been written (empty:
  // the session reserves it without waiting).
  struct Answer {
    Response response;
    std::optional<ResponseBudget::Lease> lease;
  };

  RequestHandler(const Config& config, executor::Executor& executor, Services services);

  // What the header alone decides: 404 unknown path, 405 wrong method (with Allow), 503 for
  // /execute while draining, 415 for a body that is not application/json. Sets record.route
  // (and status/error_type when it answers).
  std::optional<Response> check_header(const RequestHeader& header, RequestRecord& record) const;

  // The response to a complete request that passed check_header. Never throws for the client's
  // or the script's faults; an exception from the executor becomes 500 `internal`.
  // `cancel`, when given, is cancelled by the session if the client goes away: the request then
  // leaves the queue or has its sandbox killed, record.abandoned says where, and the answer is
  // not to be sent.
  boost::asio::awaitable<Answer> handle(const Request& request, RequestRecord& record,
                                        std::shared_ptr<executor::CancelSignal> cancel = nullptr);

  void set_draining() { draining_ = true; }
  bool draining() const { return draining_; }

  Gauges gauges() const;

 private:
  boost::asio::awaitable<Answer> execute(const Request& request, RequestRecord& record,
                                         std::shared_ptr<executor::CancelSignal> cancel);
  // The executor's outcome; an exception it throws becomes record.detail (a 500 follows).
  boost::asio::awaitable<executor::RunOutcome> run_catching(executor::ExecuteRequest run_request,
                                                            RequestRecord& record);
  // The outcome's isolation, start path, phase times and internal detail, for log and metrics.
  static void note_outcome(const executor::RunOutcome& outcome, RequestRecord& record);
  Response healthz(const Request& request, RequestRecord& record) const;
  Response readyz(const Request& request, RequestRecord& record) const;
  Response metrics(const Request& request, RequestRecord& record) const;
  // The web IDE's files and the OpenAPI document (web_routes.cpp).
  Response static_file(const StaticFile& file, const Request& request, RequestRecord& record) const;
  Response openapi(const Request& request, RequestRecord& record) const;

  const Config& config_;
  executor::Executor& executor_;
  Services services_;
  RequestLimits limits_;
  OutputCap output_cap_;
  StaticFiles web_;
  std::string openapi_json_;
  bool draining_ = false;
};

// "application/json", parameters (e.g. "; charset=utf-8") allowed, case-insensitive.
bool is_json_media_type(std::string_view content_type);

}  // namespace pysandbox::beast_server
