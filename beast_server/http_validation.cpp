#include "beast_server/http_validation.hpp"

#include <boost/beast/core/string.hpp>

namespace pysandbox::beast_server {

namespace {

bool is_ows(char c) { return c == ' ' || c == '\t'; }

std::string_view trim_ows(std::string_view text) {
  while (!text.empty() && is_ows(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_ows(text.back())) text.remove_suffix(1);
  return text;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// uri-host [":" port] (RFC 3986 reg-name, IPv4, IP-literal): unreserved, pct-encoded,
// sub-delims, ':', '[' and ']'. A character check only: enough to refuse what no authority
// holds (spaces, '/', '@', '\', control bytes, non-ASCII).
bool is_host_char(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c)) return true;
  switch (c) {
    case '-':
    case '.':
    case '_':
    case '~':
    case '%':
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':
    case '+':
    case ',':
    case ';':
    case '=':
    case ':':
    case '[':
    case ']':
      return true;
    default:
      return false;
  }
}

}  // namespace

std::optional<std::string> header_error(const RequestHeader& header) {
  std::size_t transfer_encodings = 0;
  std::size_t content_lengths = 0;
  std::size_t hosts = 0;
  std::size_t codings = 0;
  bool only_chunked = true;
  std::string_view content_length;
  std::string_view host;
  for (const auto& field : header) {
    switch (field.name()) {
      case http::field::transfer_encoding: {
        ++transfer_encodings;
        // A list: elements separated by commas, empty elements allowed (RFC 9110 5.6.1).
        std::string_view rest = field.value();
        while (true) {
          const auto comma = rest.find(',');
          const std::string_view element = trim_ows(rest.substr(0, comma));
          if (!element.empty()) {
            ++codings;
            if (!beast::iequals(element, "chunked")) only_chunked = false;
          }
          if (comma == std::string_view::npos) break;
          rest.remove_prefix(comma + 1);
        }
        break;
      }
      case http::field::content_length:
        ++content_lengths;
        content_length = field.value();
        break;
      case http::field::host:
        ++hosts;
        host = field.value();
        break;
      default:
        break;
    }
  }

  if (transfer_encodings > 0) {
    if (header.version() < 11) {
      return "Transfer-Encoding is not allowed in an HTTP/1.0 request.";
    }
    if (content_lengths > 0) {
      return "A request must not carry both Transfer-Encoding and Content-Length.";
    }
    if (codings != 1 || !only_chunked) {
      return "Unsupported Transfer-Encoding: the only transfer coding accepted is a single "
             "'chunked'.";
    }
  }
  if (content_lengths > 1) return "A request must carry at most one Content-Length.";
  if (content_lengths == 1) {
    const std::string_view value = trim_ows(content_length);
    bool digits = !value.empty();
    for (const char c : value) digits = digits && is_digit(c);
    if (!digits) return "Content-Length must be a single decimal number.";
  }

  if (hosts > 1) return "A request must carry at most one Host.";
  if (hosts == 0 && header.version() >= 11) return "An HTTP/1.1 request must carry Host.";
  for (const char c : host) {
    if (!is_host_char(c)) return "The Host header is not a valid authority.";
  }
  return std::nullopt;
}

std::string_view route_path(std::string_view target) {
  std::string_view path = target;
  if (!target.starts_with('/')) {
    // absolute-form: scheme "://" authority path-abempty [ "?" query ]
    const auto scheme_end = target.find("://");
    if (scheme_end == std::string_view::npos || scheme_end == 0) return target;
    for (const char c : target.substr(0, scheme_end)) {
      const bool scheme_char = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) ||
                               c == '+' || c == '-' || c == '.';
      if (!scheme_char) return target;
    }
    const std::string_view after = target.substr(scheme_end + 3);
    const auto slash = after.find_first_of("/?#");
    if (slash == std::string_view::npos || after[slash] != '/') return "/";
    path = after.substr(slash);
  }
  return path.substr(0, path.find_first_of("?#"));
}

BlankLines leading_blank_lines(std::string_view data) {
  BlankLines out;
  while (out.skip < data.size()) {
    const char c = data[out.skip];
    if (c == '\n') {
      ++out.skip;
    } else if (c == '\r') {
      if (out.skip + 1 == data.size()) {
        out.need_more = true;
        break;
      }
      if (data[out.skip + 1] != '\n') break;  // a lone CR: let the parser refuse it
      out.skip += 2;
    } else {
      break;
    }
  }
  return out;
}

bool wants_continue(const RequestHeader& header) {
  return header.version() >= 11 && beast::iequals(header[http::field::expect], "100-continue");
}

}  // namespace pysandbox::beast_server
