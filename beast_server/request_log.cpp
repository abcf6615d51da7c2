#include "beast_server/request_log.hpp"

#include <cmath>

#include "base/log.hpp"
#include "beast_server/utf8.hpp"

namespace pysandbox::beast_server {

namespace {

// A target is client-controlled; keep log lines bounded.
constexpr std::size_t kMaxLoggedTarget = 512;

// Microseconds are the finest resolution worth reading.
double round_ms(double ms) { return std::round(ms * 1000.0) / 1000.0; }

boost::json::value optional_ms(const std::optional<double>& ms) {
  if (!ms) return nullptr;
  return round_ms(*ms);
}

}  // namespace

std::string format_timestamp(std::chrono::system_clock::time_point when) {
  return base::format_timestamp(when);
}

boost::json::object request_line(const RequestRecord& record,
                                 std::chrono::system_clock::time_point when) {
  std::string target(utf8_prefix(record.target, kMaxLoggedTarget));
  if (record.target.size() > kMaxLoggedTarget) target += "...";
  boost::json::object line{
      {"ts", format_timestamp(when)},
      {"event", "request"},
      {"request_id", record.request_id},
      {"method", record.method},
      {"target", target},
      // null when nothing was sent (the client left first)
      {"status", record.status != 0 ? boost::json::value(static_cast<std::int64_t>(record.status))
                                    : boost::json::value(nullptr)},
      {"error_type", record.error_type.empty() ? boost::json::value(nullptr)
                                               : boost::json::value(record.error_type)},
      {"isolation",
       record.isolation ? boost::json::value(*record.isolation) : boost::json::value(nullptr)},
      {"start", record.start ? boost::json::value(*record.start) : boost::json::value(nullptr)},
      {"queue_ms", optional_ms(record.queue_ms)},
      {"spawn_ms", optional_ms(record.spawn_ms)},
      {"run_ms", optional_ms(record.run_ms)},
      {"teardown_ms", optional_ms(record.teardown_ms)},
      {"total_ms", round_ms(record.total_ms)},
      {"remote", record.remote},
  };
  // Whether the client got the response; when not, why.
  line["delivered"] = record.delivered();
  if (record.abandoned) line["abandoned"] = *record.abandoned;
  if (record.cut) line["write_timeout"] = true;
  if (!record.detail.empty()) line["detail"] = record.detail;
  return line;
}

void RequestLog::request(const RequestRecord& record) {
  const auto now = std::chrono::system_clock::now();
  write(base::format_line(kComponent, "request", request_line(record, now), now));
}

void RequestLog::event(std::string_view event, boost::json::object fields) {
  write(base::format_line(kComponent, event, fields, std::chrono::system_clock::now()));
}

void RequestLog::write(const std::string& line) {
  // One write per line, flushed: lines from a crashing process must not be lost.
  out_ << line + "\n" << std::flush;
}

}  // namespace pysandbox::beast_server
