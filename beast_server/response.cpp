#include "beast_server/response.hpp"

#include <string.h>  // sigabbrev_np (GNU)

#include <cmath>
#include <optional>
#include <utility>

#include "beast_server/utf8.hpp"

namespace pysandbox::beast_server {

namespace {

// Request-controlled text echoed into messages is cut to keep error bodies small.
constexpr std::size_t kMaxEcho = 128;

// Cut at a character boundary; bytes that are not UTF-8 are replaced when the body is written
// (to_json_text), like every other string.
std::string echo(std::string_view text) {
  if (text.size() <= kMaxEcho) return std::string(text);
  return std::string(utf8_prefix(text, kMaxEcho)) + "...";
}

// Millisecond figures to the microsecond: more digits are noise.
double round_ms(double ms) { return std::round(ms * 1000.0) / 1000.0; }

boost::json::object usage_json(const executor::Usage& usage) {
  return boost::json::object{
      {"wall_ms", round_ms(usage.wall_ms)},
      {"cpu_ms", round_ms(usage.cpu_ms)},
      {"peak_memory_bytes", usage.peak_memory_bytes},
  };
}

// What every response of a run that started carries, success or not.
void add_run_fields(boost::json::object& body, const executor::RunOutcome& outcome) {
  body["stdout"] = outcome.stdout_data;
  body["stderr"] = outcome.stderr_data;
  body["usage"] = usage_json(outcome.usage);
  body["isolation"] = executor::to_string(outcome.isolation);
  body["start"] = executor::to_string(outcome.start);
  body["truncated"] = outcome.truncated;
}

// Used when the executor leaves `message` empty; every status still gets a sentence.
std::string default_message(const executor::RunOutcome& outcome) {
  using executor::Status;
  switch (outcome.status) {
    case Status::kOk:
      return "";
    case Status::kSyntaxError:
      return "The script has a syntax error.";
    case Status::kNoMain:
      return "The script does not define main().";
    case Status::kMainNotCallable:
      return "The script's main is not callable.";
    case Status::kException:
      return "main() raised an exception.";
    case Status::kNotJsonSerializable:
      return "main() returned a value that is not JSON.";
    case Status::kTimeout:
      return "The script exceeded its time limit.";
    case Status::kMemoryLimit:
      return "The script exceeded its memory limit.";
    case Status::kOutputLimit:
      return "The script's output exceeded its limit.";
    case Status::kKilled:
      return "";  // composed from the signal by the caller
    case Status::kCancelled:
      return "The request was cancelled: its client went away.";
    case Status::kInternal:
      return "";
  }
  return "";
}

}  // namespace

std::string signal_name(int signal) {
  if (const char* abbrev = ::sigabbrev_np(signal)) return std::string("SIG") + abbrev;
  return "signal " + std::to_string(signal);
}

JsonResponse error_response(unsigned status, std::string_view error_type, std::string message,
                            std::string_view request_id) {
  JsonResponse response;
  response.status = status;
  response.error_type = error_type;
  response.body["error"] = std::move(message);
  response.body["error_type"] = error_type;
  response.body["request_id"] = request_id;
  return response;
}

JsonResponse error_response(const ApiError& error, std::string_view request_id) {
  return error_response(error.status, error.error_type, error.message, request_id);
}

JsonResponse internal_error_response(std::string_view request_id) {
  return error_response(500, "internal",
                        "Internal error in the service; report request id " +
                            std::string(request_id) + " to its operator.",
                        request_id);
}

namespace {

// Applies the escaped-size cap to stdout and stderr: returns the outcome to map (a copy only when
// something had to change).
const executor::RunOutcome& capped(const executor::RunOutcome& outcome, const OutputCap& cap,
                                   std::optional<executor::RunOutcome>& storage) {
  using executor::Status;
  if (!outcome.ran || outcome.status == Status::kInternal) return outcome;
  const auto over = [&](const std::string& text) {
    return !is_valid_utf8(text) || json_escaped_size(text) > cap.max_escaped_bytes;
  };
  if (!over(outcome.stdout_data) && !over(outcome.stderr_data)) return outcome;

  executor::RunOutcome& copy = storage.emplace(outcome);
  std::string too_big;
  std::size_t too_big_size = 0;
  for (auto [name, text] : {std::pair<const char*, std::string*>{"stdout", &copy.stdout_data},
                            std::pair<const char*, std::string*>{"stderr", &copy.stderr_data}}) {
    if (!is_valid_utf8(*text)) *text = to_valid_utf8(*text);
    const std::size_t size = json_escaped_size(*text);
    if (size <= cap.max_escaped_bytes) continue;
    if (too_big.empty()) {
      too_big = name;
      too_big_size = size;
    }
    *text = std::string(escaped_prefix(*text, cap.max_escaped_bytes));
    copy.truncated = true;
  }
  if (!too_big.empty() && !cap.truncate && copy.status != Status::kOutputLimit) {
    copy.status = Status::kOutputLimit;
    copy.message = "the script's " + too_big + " is " + std::to_string(too_big_size) +
                   " bytes as JSON text (control characters are escaped), over the limit of " +
                   std::to_string(cap.max_escaped_bytes) + " bytes";
    copy.trace.clear();
  }
  return copy;
}

}  // namespace

JsonResponse map_outcome(const executor::RunOutcome& original, std::string_view request_id,
                         const OutputCap& cap) {
  using executor::Status;
  if (original.status == Status::kInternal) return internal_error_response(request_id);
  std::optional<executor::RunOutcome> storage;
  const executor::RunOutcome& outcome = capped(original, cap, storage);

  if (outcome.status == Status::kOk) {
    JsonResponse response;
    response.status = 200;
    response.error_type = "ok";
    auto& body = response.body;
    body["result"] = outcome.result;
    add_run_fields(body, outcome);
    return response;
  }

  std::string message = outcome.message.empty() ? default_message(outcome) : outcome.message;
  std::string signal;
  if (outcome.status == Status::kKilled) {
    signal = signal_name(outcome.signal);
    // The contract promises the signal's name in the sentence; keep the executor's detail too.
    message = outcome.message.empty() ? "killed by signal " + signal
                                      : "killed by signal " + signal + ": " + outcome.message;
  }
  JsonResponse response =
      error_response(422, executor::error_type(outcome.status), std::move(message), request_id);
  if (!signal.empty()) response.body["signal"] = signal;
  if (outcome.ran) {
    response.body["trace"] = outcome.trace;
    add_run_fields(response.body, outcome);
  }
  return response;
}

JsonResponse overloaded_response(std::string_view request_id, unsigned retry_after_seconds) {
  JsonResponse response = error_response(
      429, "overloaded", "All sandboxes are busy and the queue is full; retry later.", request_id);
  response.headers.emplace_back("Retry-After", std::to_string(retry_after_seconds));
  return response;
}

JsonResponse unavailable_response(std::string_view request_id) {
  return error_response(503, "unavailable",
                        "The service is shutting down; retry on another instance.", request_id);
}

JsonResponse not_found_response(std::string_view request_id, std::string_view path) {
  return error_response(
      404, "not_found",
      "No such endpoint '" + echo(path) +
          "' (endpoints: POST /execute, GET /healthz, GET /readyz, GET /metrics).",
      request_id);
}

JsonResponse method_not_allowed_response(std::string_view request_id, std::string_view method,
                                         std::string_view path, std::string_view allow) {
  JsonResponse response = error_response(405, "method_not_allowed",
                                         "Method " + echo(method) + " is not allowed on " +
                                             echo(path) + " (allowed: " + std::string(allow) + ").",
                                         request_id);
  response.headers.emplace_back("Allow", allow);
  return response;
}

JsonResponse unsupported_media_type_response(std::string_view request_id,
                                             std::string_view content_type) {
  return error_response(
      415, "unsupported_media_type",
      content_type.empty()
          ? std::string("The request needs Content-Type: application/json.")
          : "Content-Type '" + echo(content_type) + "' is not supported; send application/json.",
      request_id);
}

}  // namespace pysandbox::beast_server
