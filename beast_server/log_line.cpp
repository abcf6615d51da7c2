#include "beast_server/log_line.hpp"

#include <boost/json/parse.hpp>

#include "base/log.hpp"
#include "beast_server/json_text.hpp"
#include "beast_server/utf8.hpp"

namespace pysandbox::beast_server {

std::string stamp_log_line(std::string_view line, std::chrono::system_clock::time_point now) {
  if (line.ends_with('\r')) line.remove_suffix(1);
  boost::system::error_code ec;
  // Strict parse: invalid UTF-8 is an error, so whatever passes as is stays valid JSON.
  boost::json::value parsed =
      line.starts_with('{') ? boost::json::parse(line, ec) : boost::json::value();
  if (!ec && parsed.is_object()) {
    const boost::json::object& object = parsed.as_object();
    if (const auto* ts = object.if_contains("ts"); ts != nullptr && ts->is_string()) {
      return std::string(line);
    }
    boost::json::object stamped{{"ts", base::format_timestamp(now)}};
    for (const auto& [key, value] : object) {
      if (key != "ts") stamped[key] = value;
    }
    return to_json_text(stamped);
  }
  return to_json_text(boost::json::object{{"ts", base::format_timestamp(now)},
                                          {"event", "log"},
                                          {"component", "stderr"},
                                          {"message", to_valid_utf8(line)}});
}

}  // namespace pysandbox::beast_server
