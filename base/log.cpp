#include "base/log.hpp"

#include <unistd.h>

#include <array>
#include <boost/json/serialize.hpp>
#include <cerrno>
#include <charconv>
#include <mutex>

#include "base/json_line.hpp"

namespace pysandbox::base {

namespace {

void append_string(std::string& out, std::string_view text) {
  out += '"';
  escape_json_string(text, [&out](std::string_view piece) {
    out += piece;
    return true;
  });
  out += '"';
}

void append_double(std::string& out, double number) {
  std::array<char, 32> buffer{};
  const auto [end, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), number);
  if (ec != std::errc{}) {
    // Cannot happen for 32 bytes; fall back to Boost.JSON's own form.
    out += boost::json::serialize(boost::json::value(number));
    return;
  }
  const std::string_view text(buffer.data(), static_cast<std::size_t>(end - buffer.data()));
  out += text;
  if (text.find_first_of(".e") == std::string_view::npos) out += ".0";
}

// Shared by every thread that logs: one line is one write, never interleaved with another.
std::mutex& log_lock() {
  static std::mutex lock;
  return lock;
}

}  // namespace

std::string format_timestamp(std::chrono::system_clock::time_point when) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(when.time_since_epoch()).count();
  std::array<char, kTimestampSize> text{};
  const char* end = format_timestamp_to(text.data(), static_cast<std::int64_t>(ms));
  return std::string(text.data(), static_cast<std::size_t>(end - text.data()));
}

// Recursion depth is bounded by whoever built the value (log fields are shallow; parsed values
// come from parsers that limit nesting).
void append_json(std::string& out, const boost::json::value& value) {
  switch (value.kind()) {
    case boost::json::kind::double_:
      append_double(out, value.get_double());
      return;
    case boost::json::kind::string:
      append_string(out, value.get_string());
      return;
    case boost::json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& element : value.get_array()) {
        if (!first) out += ',';
        first = false;
        append_json(out, element);
      }
      out += ']';
      return;
    }
    case boost::json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, element] : value.get_object()) {
        if (!first) out += ',';
        first = false;
        append_string(out, key);
        out += ':';
        append_json(out, element);
      }
      out += '}';
      return;
    }
    default:
      out += boost::json::serialize(value);
      return;
  }
}

std::string to_json(const boost::json::value& value) {
  std::string out;
  append_json(out, value);
  return out;
}

std::string format_line(std::string_view component, std::string_view event,
                        const boost::json::object& fields,
                        std::chrono::system_clock::time_point when) {
  std::string out = "{\"ts\":\"";
  out += format_timestamp(when);
  out += "\",\"event\":";
  append_string(out, event);
  out += ",\"component\":";
  append_string(out, component);
  for (const auto& [key, value] : fields) {
    if (key == "ts" || key == "event" || key == "component") continue;
    out += ',';
    append_string(out, key);
    out += ':';
    append_json(out, value);
  }
  out += '}';
  return out;
}

void write_line(int fd, std::string_view line) {
  std::string text;
  text.reserve(line.size() + 1);
  text.append(line).push_back('\n');
  const std::lock_guard hold(log_lock());
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // nowhere left to report it
    done += static_cast<std::size_t>(n);
  }
}

void log(std::string_view component, std::string_view event, const boost::json::object& fields) {
  write_line(STDERR_FILENO,
             format_line(component, event, fields, std::chrono::system_clock::now()));
}

void Logger::log(std::string_view event, const boost::json::object& fields) const {
  write_line(fd_, format_line(component_, event, fields, std::chrono::system_clock::now()));
}

}  // namespace pysandbox::base
