#include "beast_server/api_catalog.hpp"

#include <algorithm>
#include <array>

namespace pysandbox::beast_server {

namespace {

constexpr std::array kCatalog{
    ErrorKind{"invalid_json", 400, ErrorClass::kRequest, "The request body is not valid JSON."},
    ErrorKind{"invalid_request", 400, ErrorClass::kRequest,
              "The request is malformed: the body is not a JSON object, `script` is missing, "
              "empty or not a string, a field has the wrong type or value, a field is unknown, or "
              "the HTTP message itself is malformed."},
    ErrorKind{"not_found", 404, ErrorClass::kRequest,
              "No such endpoint (also `/` when the web IDE is disabled or not installed)."},
    ErrorKind{"method_not_allowed", 405, ErrorClass::kRequest,
              "The endpoint exists but not for this method; the `Allow` header lists the methods "
              "it takes."},
    ErrorKind{"too_large", 413, ErrorClass::kRequest,
              "The request body or the script is over its size limit, or the body takes too much "
              "memory to parse."},
    ErrorKind{"too_large", 431, ErrorClass::kRequest, "The request header is over 16 KiB."},
    ErrorKind{"unsupported_media_type", 415, ErrorClass::kRequest,
              "The request's Content-Type is not application/json."},
    ErrorKind{"syntax_error", 422, ErrorClass::kScript,
              "The script does not compile; the sentence names the line."},
    ErrorKind{"no_main", 422, ErrorClass::kScript, "The script does not define main()."},
    ErrorKind{"main_not_callable", 422, ErrorClass::kScript,
              "The script defines main, but not as a function."},
    ErrorKind{"exception", 422, ErrorClass::kScript,
              "The script raised an exception (at its top level or in main()); `trace` holds the "
              "traceback."},
    ErrorKind{"not_json_serializable", 422, ErrorClass::kScript,
              "main() returned a value JSON cannot represent (e.g. a numpy scalar: convert it "
              "explicitly)."},
    ErrorKind{"timeout", 422, ErrorClass::kLimit,
              "The script did not finish within timeout_ms; every process of the sandbox was "
              "killed."},
    ErrorKind{"memory_limit", 422, ErrorClass::kLimit, "The script ran out of memory (memory_mb)."},
    ErrorKind{"output_limit", 422, ErrorClass::kLimit,
              "stdout, stderr or the result went over the output cap."},
    ErrorKind{"killed", 422, ErrorClass::kLimit,
              "The script was killed by a signal (a fault such as SIGSEGV, or a limit); `signal` "
              "names it."},
    ErrorKind{"overloaded", 429, ErrorClass::kService,
              "Every sandbox is busy and the queue is full, or the wait in the queue expired; "
              "retry after `Retry-After` seconds."},
    ErrorKind{"internal", 500, ErrorClass::kService,
              "The service failed; the details are in its log under the request id."},
    ErrorKind{"unavailable", 503, ErrorClass::kService,
              "The service is shutting down, not ready yet, or has too many open connections; "
              "retry (on another instance)."},
};

}  // namespace

std::span<const ErrorKind> error_catalog() { return kCatalog; }

const ErrorKind* find_error_kind(std::string_view error_type, unsigned status) {
  for (const auto& kind : kCatalog) {
    if (kind.error_type == error_type && kind.status == status) return &kind;
  }
  return nullptr;
}

std::vector<unsigned> error_statuses() {
  std::vector<unsigned> statuses;
  for (const auto& kind : kCatalog) statuses.push_back(kind.status);
  std::sort(statuses.begin(), statuses.end());
  statuses.erase(std::unique(statuses.begin(), statuses.end()), statuses.end());
  return statuses;
}

std::vector<std::string_view> error_types_for_status(unsigned status) {
  std::vector<std::string_view> types;
  for (const auto& kind : kCatalog) {
    if (kind.status == status) types.push_back(kind.error_type);
  }
  return types;
}

std::vector<std::string_view> error_types() {
  std::vector<std::string_view> types;
  for (const auto& kind : kCatalog) {
    if (std::find(types.begin(), types.end(), kind.error_type) == types.end()) {
      types.push_back(kind.error_type);
    }
  }
  return types;
}

std::string_view to_string(ErrorClass error_class) {
  switch (error_class) {
    case ErrorClass::kRequest:
      return "request";
    case ErrorClass::kScript:
      return "script";
    case ErrorClass::kLimit:
      return "limit";
    case ErrorClass::kService:
      return "service";
  }
  return "service";
}

}  // namespace pysandbox::beast_server
