// The process's one log: JSON lines on stderr, each {"ts", "event", "component", ...fields},
// written whole in one write(2) under a lock, so that lines from several threads (and, through a
// pipe, several processes) never interleave. "ts" is RFC 3339 UTC with milliseconds. Strings
// that are not UTF-8 are written with U+FFFD for each invalid byte: every line is valid JSON.
// Code that may not allocate (a signal handler, a forked child, the zygote module) uses
// JsonLine (json_line.hpp), which writes the same format.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <string>
#include <string_view>

namespace pysandbox::base {

// RFC 3339 UTC with milliseconds, e.g. "2024-05-01T12:00:00.123Z".
std::string format_timestamp(std::chrono::system_clock::time_point when);

// Compact JSON text of `value`. Doubles in their shortest round-trip form, with ".0" kept on
// integral values ("100.0", not Boost.JSON's "1E2"); strings escaped as escape_json_string does.
void append_json(std::string& out, const boost::json::value& value);
std::string to_json(const boost::json::value& value);

// One line (without its newline): "ts", "event", "component", then `fields` in their order,
// except keys named "ts", "event" or "component", which are skipped.
std::string format_line(std::string_view component, std::string_view event,
                        const boost::json::object& fields,
                        std::chrono::system_clock::time_point when);

// Writes `line` plus a newline to `fd` in one write(2), under the process-wide log lock.
void write_line(int fd, std::string_view line);

// Logs one line, stamped now, to stderr.
void log(std::string_view component, std::string_view event,
         const boost::json::object& fields = {});

// A component's log, to stderr or (for tests) another descriptor.
class Logger {
 public:
  explicit Logger(std::string component, int fd = 2) : component_(std::move(component)), fd_(fd) {}

  void log(std::string_view event, const boost::json::object& fields = {}) const;

 private:
  std::string component_;
  int fd_;
};

}  // namespace pysandbox::base
