// The contract's response bodies: RunOutcome -> (status, JSON), and the service's own errors.
// Independent of Beast so that the mapping is cheap to test; request_handler turns a
// JsonResponse into an HTTP message.
#pragma once

#include <boost/json/object.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "beast_server/api_error.hpp"
#include "executor/types.hpp"

namespace pysandbox::beast_server {

struct JsonResponse {
  unsigned status = 200;
  // The contract's error_type, "ok" for a successful run; for the log and the metrics.
  std::string error_type;
  boost::json::object body;
  // Extra headers such as Allow or Retry-After.
  std::vector<std::pair<std::string, std::string>> headers;
};

// How big stdout and stderr may be in a response, each, once escaped as JSON text: a control
// byte takes 6 bytes there, so a cap on the script's raw output alone would let a response grow
// to 6 times it. Past the cap the run is refused as output_limit, or with `truncate` the text
// is cut (at a character boundary) and flagged "truncated": the same choice as for raw output.
struct OutputCap {
  std::size_t max_escaped_bytes = static_cast<std::size_t>(-1);
  bool truncate = false;
};

// "SIGKILL" for 9; "signal 70" for numbers without a name.
std::string signal_name(int signal);

// 200 with result/stdout/stderr/usage/isolation/truncated for kOk; 422 for the script's faults
// and limits (with stdout, stderr, trace, usage, isolation, truncated when the script ran, and
// "signal" for kKilled); 500 `internal` with a generic sentence for kInternal (internal_detail
// is for the log only). Error bodies carry request_id.
// stdout and stderr are held to `cap` (see OutputCap).
JsonResponse map_outcome(const executor::RunOutcome& outcome, std::string_view request_id,
                         const OutputCap& cap = {});

// {"error", "error_type", "request_id"} with the given status.
JsonResponse error_response(unsigned status, std::string_view error_type, std::string message,
                            std::string_view request_id);
JsonResponse error_response(const ApiError& error, std::string_view request_id);

// 429 overloaded with Retry-After.
JsonResponse overloaded_response(std::string_view request_id, unsigned retry_after_seconds);
// 503 unavailable (shutting down).
JsonResponse unavailable_response(std::string_view request_id);
JsonResponse not_found_response(std::string_view request_id, std::string_view path);
// 405 with `Allow: <allow>`.
JsonResponse method_not_allowed_response(std::string_view request_id, std::string_view method,
                                         std::string_view path, std::string_view allow);
JsonResponse unsupported_media_type_response(std::string_view request_id,
                                             std::string_view content_type);
JsonResponse internal_error_response(std::string_view request_id);

}  // namespace pysandbox::beast_server
