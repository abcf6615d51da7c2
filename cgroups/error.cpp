#include "cgroups/error.hpp"

#include <cstring>
#include <system_error>

#include "base/log.hpp"

namespace pysandbox::cgroups {

Error errno_error(int err, std::string_view op, std::string_view path) {
  std::string message;
  message.reserve(op.size() + path.size() + 40);
  message.append(op).append(" ").append(path).append(": ").append(std::strerror(err));
  return Error(err, std::move(message));
}

void log_warning(std::string_view message) {
  base::log("cgroups", "warning", {{"message", message}});
}

void throw_exception_from_error(const Error& error, const boost::source_location&) {
  throw std::system_error(std::error_code(error.code(), std::generic_category()), error.message());
}

}  // namespace pysandbox::cgroups
