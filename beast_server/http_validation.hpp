// What the HTTP layer checks in a request header before trusting it, beyond Beast's parser:
// message framing (RFC 9112 section 6), Host (section 3.2), and the request target's forms
// (section 3.2.1-3.2.2). Pure functions of the parsed header, so that the session, the fuzz
// target and the table tests share them.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "beast_server/http_types.hpp"

namespace pysandbox::beast_server {

// Why the header must be refused with 400 and the connection closed, or nullopt. Refused:
//  - Transfer-Encoding in an HTTP/1.0 request (faulty framing, section 6.1);
//  - Transfer-Encoding together with Content-Length (section 6.1: a request smuggling vector);
//  - any transfer coding list other than exactly "chunked": a last coding that is not chunked
//    leaves the body length unknown (section 6.3), chunked twice is forbidden, and no other
//    coding is implemented (gzip, identity, parameters, ...);
//  - more than one Content-Length field line, or a value that is not one decimal number
//    ("5, 5" and duplicates included: a recipient may reject them, and we do);
//  - a missing Host in HTTP/1.1, more than one Host, or a Host value with characters no
//    authority contains.
std::optional<std::string> header_error(const RequestHeader& header);

// The path a target routes by, without its query: "/execute?x=1" -> "/execute", and the
// absolute form "http://host:8080/execute?x" -> "/execute" (section 3.2.2; the authority is
// not checked against anything). Other forms ("*", "host:443") are returned unchanged and
// match no route.
std::string_view route_path(std::string_view target);

// Section 2.2: empty lines (CRLF or a bare LF) before a request line are ignored. Returns how
// many leading bytes of `data` are such lines; `need_more` when `data` ends in a lone CR that
// may yet become a CRLF.
struct BlankLines {
  std::size_t skip = 0;
  bool need_more = false;
};
BlankLines leading_blank_lines(std::string_view data);

// Whether to send 100 Continue: only HTTP/1.1 clients that ask for it (RFC 9110 section
// 10.1.1: an HTTP/1.0 request's expectation is ignored).
bool wants_continue(const RequestHeader& header);

}  // namespace pysandbox::beast_server
