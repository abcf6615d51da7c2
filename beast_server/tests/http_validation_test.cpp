// Table tests of the header checks, the routing path and the empty-line rule.
#include "beast_server/http_validation.hpp"

#include <gtest/gtest.h>

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

namespace pysandbox::beast_server {
namespace {

// The header of `text` as Beast parses it (the session's parser); fails the test if Beast
// itself refuses it.
RequestHeader parse_header(const std::string& text) {
  http::request_parser<http::empty_body> parser;
  parser.skip(true);
  beast::error_code ec;
  parser.put(net::buffer(text), ec);
  EXPECT_FALSE(ec) << ec.message() << " for " << text;
  return parser.get().base();
}

struct HeaderCase {
  std::string fields;  // after the request line, before the empty line
  bool ok;
  unsigned version = 11;
};

TEST(HeaderError, FramingAndHostTable) {
  const HeaderCase cases[] = {
      {"Host: x\r\n", true},
      {"Host: x\r\nContent-Length: 5\r\n", true},
      {"Host: x\r\nContent-Length:  5 \r\n", true},
      {"Host: x\r\nTransfer-Encoding: chunked\r\n", true},
      {"Host: x\r\nTransfer-Encoding: CHUNKED\r\n", true},
      {"Host: x\r\nTransfer-Encoding: , chunked,\r\n", true},  // empty list elements
      {"Host: x\r\nTransfer-Encoding: gzip\r\n", false},
      {"Host: x\r\nTransfer-Encoding: identity\r\n", false},
      {"Host: x\r\nTransfer-Encoding: chunked, gzip\r\n", false},
      {"Host: x\r\nTransfer-Encoding: gzip, chunked\r\n", false},
      {"Host: x\r\nTransfer-Encoding: chunked, chunked\r\n", false},
      {"Host: x\r\nTransfer-Encoding: chunked;a=b\r\n", false},
      {"Host: x\r\nTransfer-Encoding: \r\n", false},
      {"Host: x\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", false},
      {"Host: x\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n", false},
      {"Transfer-Encoding: chunked\r\n", false, 10},
      {"Host: x\r\nTransfer-Encoding: chunked\r\n", false, 10},
      {"Host: x\r\nContent-Length: 5, 5\r\n", false},
      {"Host: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n", false},
      {"", false},
      {"", true, 10},
      {"Host: a\r\nHost: a\r\n", false},
      {"Host: a\r\nHost: a\r\n", false, 10},
      {"Host: \r\n", true},
      {"Host: [::1]:80\r\n", true},
      {"Host: xn--bcher-kva.example:8080\r\n", true},
      {"Host: a b\r\n", false},
      {"Host: a/b\r\n", false},
      {"Host: a@b\r\n", false},
      {"Host: a\\b\r\n", false},
      {"Host: \xc3\xa9\r\n", false},
  };
  for (const auto& c : cases) {
    const std::string text =
        std::string("POST / HTTP/1.") + (c.version == 10 ? "0" : "1") + "\r\n" + c.fields + "\r\n";
    const auto error = header_error(parse_header(text));
    EXPECT_EQ(!error.has_value(), c.ok) << text << (error ? " -> " + *error : "");
  }
}

TEST(RoutePath, OriginAndAbsoluteForms) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"/execute", "/execute"},
      {"/execute?x=1", "/execute"},
      {"/healthz#frag", "/healthz"},
      {"http://host/execute", "/execute"},
      {"HTTPS://host:8080/readyz?a", "/readyz"},
      {"http://host", "/"},
      {"http://host?x", "/"},
      {"http://user@host/metrics", "/metrics"},
      {"*", "*"},
      {"host:443", "host:443"},
      {"://x/execute", "://x/execute"},
      {"h t://x/execute", "h t://x/execute"},
      {"", ""},
  };
  for (const auto& [target, path] : cases) EXPECT_EQ(route_path(target), path) << target;
}

TEST(LeadingBlankLines, SkipsCrlfAndLf) {
  struct Case {
    std::string_view data;
    std::size_t skip;
    bool need_more;
  };
  const Case cases[] = {
      {"GET", 0, false}, {"\r\nGET", 2, false}, {"\n\r\n\nGET", 4, false},
      {"\r", 0, true},   {"\r\n\r", 2, true},   {"\rX", 0, false},
      {"", 0, false},    {"\r\n", 2, false},
  };
  for (const auto& c : cases) {
    const BlankLines blank = leading_blank_lines(c.data);
    EXPECT_EQ(blank.skip, c.skip) << c.data;
    EXPECT_EQ(blank.need_more, c.need_more) << c.data;
  }
}

TEST(WantsContinue, OnlyForHttp11) {
  EXPECT_TRUE(wants_continue(parse_header("POST / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n")));
  EXPECT_TRUE(wants_continue(parse_header("POST / HTTP/1.1\r\nExpect: 100-Continue\r\n\r\n")));
  EXPECT_FALSE(wants_continue(parse_header("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n")));
  EXPECT_FALSE(wants_continue(parse_header("POST / HTTP/1.1\r\n\r\n")));
}

}  // namespace
}  // namespace pysandbox::beast_server
