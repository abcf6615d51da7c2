// Errors of the cgroups module: an errno (0 when none applies) plus an operator-facing sentence
// in crun's style, e.g. "write /sys/fs/cgroup/x/memory.max: Permission denied".
#pragma once

#include <boost/assert/source_location.hpp>
#include <boost/system/result.hpp>
#include <string>
#include <string_view>
#include <utility>

namespace pysandbox::cgroups {

class Error {
 public:
  Error() = default;
  Error(int code, std::string message) : code_(code), message_(std::move(message)) {}

  // The errno value behind the failure, or 0 (e.g. a parse error or a libcgroup code).
  int code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }

 private:
  int code_ = 0;
  std::string message_;
};

template <class T>
using Result = boost::system::result<T, Error>;

// "<op> <path>: <strerror(err)>".
Error errno_error(int err, std::string_view op, std::string_view path);

// One log line ({"event": "warning", "component": "cgroups", "message"}) for what has no caller
// to report to (destructors, stale-leaf cleanup).
void log_warning(std::string_view message);

// Lets Result<T>::value() throw: std::system_error carrying the errno and the message.
[[noreturn]] void throw_exception_from_error(const Error& error,
                                             const boost::source_location& location);

}  // namespace pysandbox::cgroups
