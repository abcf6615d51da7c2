#include "beast_server/json_text.hpp"

#include <array>
#include <boost/json/serialize.hpp>
#include <charconv>
#include <string_view>

#include "beast_server/utf8.hpp"

namespace pysandbox::beast_server {

namespace {

// Every string goes out as valid UTF-8: bytes from a client or a script that are not are replaced
// (U+FFFD per byte), so no response or log line is ever invalid JSON.
void append_string(std::string& out, std::string_view text) {
  if (is_valid_utf8(text)) {
    out += boost::json::serialize(boost::json::string_view(text.data(), text.size()));
    return;
  }
  const std::string valid = to_valid_utf8(text);
  out += boost::json::serialize(boost::json::string_view(valid.data(), valid.size()));
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

// Recursion depth is bounded by the parsers that built the value (the executor's result
// parser and our own request parser both limit nesting).
void append(std::string& out, const boost::json::value& value) {
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
        append(out, element);
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
        append(out, element);
      }
      out += '}';
      return;
    }
    default:
      out += boost::json::serialize(value);
      return;
  }
}

}  // namespace

std::string to_json_text(const boost::json::value& value) {
  std::string out;
  append(out, value);
  return out;
}

}  // namespace pysandbox::beast_server
