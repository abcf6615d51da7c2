// The server's log: one JSON object per line on a stream (stderr in production), in the format
// of base/log.hpp (component "server"), so that a log collector can index requests by id.
#pragma once

#include <boost/json/object.hpp>
#include <chrono>
#include <ostream>
#include <string>
#include <string_view>

#include "beast_server/request_record.hpp"

namespace pysandbox::beast_server {

// RFC 3339 UTC with milliseconds, e.g. "2024-05-01T12:00:00.123Z".
std::string format_timestamp(std::chrono::system_clock::time_point when);

// {"ts", "event": "request", request_id, method, target, status, error_type, isolation, start,
//  queue_ms, spawn_ms, run_ms, teardown_ms, total_ms, remote, delivered[, abandoned]
//  [, write_timeout][, detail]}; absent phases are null. Strings that are not UTF-8 (a
//  client's target) are written with U+FFFD for each invalid byte.
boost::json::object request_line(const RequestRecord& record,
                                 std::chrono::system_clock::time_point when);

class RequestLog {
 public:
  explicit RequestLog(std::ostream& out) : out_(out) {}

  // Lines: {"ts", "event": "request", "component": "server", ...request_line's fields}.
  void request(const RequestRecord& record);
  // A non-request line: {"ts", "event": <event>, "component": "server", ...fields}.
  void event(std::string_view event, boost::json::object fields);

 private:
  static constexpr std::string_view kComponent = "server";

  void write(const std::string& line);

  std::ostream& out_;
};

}  // namespace pysandbox::beast_server
