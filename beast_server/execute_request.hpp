// Validation of a POST /execute body against the API contract (README "API", GET /openapi.json).
#pragma once

#include <cstddef>
#include <string_view>
#include <variant>

#include "beast_server/api_error.hpp"
#include "executor/request_defaults.hpp"
#include "executor/types.hpp"

namespace pysandbox::beast_server {

struct Config;

struct RequestLimits {
  std::size_t max_script_bytes = executor::kDefaultMaxScriptBytes;
  unsigned default_timeout_ms = executor::kDefaultTimeoutMs;
  unsigned max_timeout_ms = executor::kDefaultMaxTimeoutMs;
  unsigned default_memory_mb = executor::kDefaultMemoryMb;
  unsigned max_memory_mb = executor::kDefaultMaxMemoryMb;
  // Memory the parsed body may occupy; 0 = 32 x its size + 1 MiB. Far above what any real
  // request needs (a body of tiny values expands about 15-fold); a bound, not a tuning knob.
  std::size_t max_json_memory_bytes = 0;
};

RequestLimits request_limits(const Config& config);

// JSON nesting allowed in a body; the contract's bodies are flat, so this only bounds the
// parser's work on hostile input.
inline constexpr std::size_t kMaxJsonDepth = 32;

// Returns the request (request_id and slot left for the caller) or the error to send:
//   400 invalid_json     body is not JSON (or nests deeper than kMaxJsonDepth)
//   400 invalid_request  not an object; script missing / not a string / empty; timeout_ms or
//                        memory_mb not a positive integer; memory_mb below kMinMemoryMb;
//                        stdin not a string; an unknown field; null for any field
//   413 too_large        script longer than max_script_bytes; body too costly to parse
// timeout_ms and memory_mb above their maximum are capped, not refused; an integral float
// such as 1e3 counts as an integer.
std::variant<executor::ExecuteRequest, ApiError> parse_execute_request(std::string_view body,
                                                                       const RequestLimits& limits);

}  // namespace pysandbox::beast_server
