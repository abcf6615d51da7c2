// HTTP/1.1 as RFC 9112 has it, against the in-process server: message framing (section 6, the
// request smuggling rules), Host, the request target's forms, empty lines before a request,
// 100 Continue, and valid JSON whatever bytes a client sends.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "beast_server/tests/server_harness.hpp"
#include "beast_server/utf8.hpp"

namespace pysandbox::beast_server {
namespace {

using namespace testing;

// A complete POST /execute whose body runs `script` (the fake executor's directive).
std::string execute_bytes(const std::string& script) {
  const std::string body = R"({"script":")" + script + R"("})";
  return "POST /execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         "Content-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

// Sends `bytes`, expects exactly one 400 invalid_request and then the close, and that nothing
// ran: a smuggled request inside the body must never be read as a request of its own.
void expect_refused_and_closed(ServerHarness& harness, const std::string& bytes,
                               const std::string& label) {
  SCOPED_TRACE(label);
  Client client(harness.port);
  client.write_raw(bytes);
  const auto response = client.read();
  EXPECT_EQ(response.result_int(), 400u) << response.body();
  EXPECT_EQ(json_of(response).at("error_type").as_string(), "invalid_request");
  EXPECT_FALSE(response.keep_alive());
  std::string rest;
  EXPECT_TRUE(client.wait_for_close(&rest));
  EXPECT_EQ(rest.find("HTTP/1.1"), std::string::npos) << "a second response: " << rest;
  EXPECT_EQ(harness.executor.runs(), 0);
}

std::string with_smuggled_body(const std::string& framing) {
  // The outer body is the inner request: if the outer framing is ignored (body read as empty),
  // the inner one runs.
  const std::string inner = execute_bytes("smuggled");
  return "POST /execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + framing +
         "\r\n" + inner;
}

TEST(Framing, TransferCodingsOtherThanAFinalChunkedAreRefused) {
  ServerHarness harness;
  // RFC 9112 6.1/6.3: a last coding that is not chunked leaves the length unknown; chunked at
  // most once; no other coding is implemented here.
  for (const std::string coding :
       {"gzip", "identity", "xchunked", "chunked, gzip", "foo", "chunked, chunked", "gzip, chunked",
        "chunked;q=1", "\"chunked\"", "chunked x", ",", "compress, chunked"}) {
    expect_refused_and_closed(harness, with_smuggled_body("Transfer-Encoding: " + coding + "\r\n"),
                              "Transfer-Encoding: " + coding);
  }
  // The same across two field lines.
  expect_refused_and_closed(
      harness, with_smuggled_body("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"),
      "gzip line, chunked line");
  expect_refused_and_closed(
      harness, with_smuggled_body("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n"),
      "chunked line, gzip line");
}

TEST(Framing, TransferEncodingWithContentLengthIsRefused) {
  ServerHarness harness;
  const std::string inner = execute_bytes("smuggled");
  const std::string chunked = "0\r\n\r\n" + inner;
  expect_refused_and_closed(harness,
                            "POST /execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                            "\r\nTransfer-Encoding: chunked\r\nContent-Length: " +
                                std::to_string(chunked.size()) + "\r\n\r\n" + chunked,
                            "TE then CL");
  expect_refused_and_closed(harness,
                            "POST /execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                            "\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" +
                                chunked,
                            "CL then TE");
  expect_refused_and_closed(harness,
                            "POST /execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                            "\r\nTransfer-Encoding: gzip\r\nContent-Length: 0\r\n\r\n" +
                                inner,
                            "TE gzip then CL 0");
}

TEST(Framing, TransferEncodingInHttp10IsRefused) {
  ServerHarness harness;
  // RFC 9112 6.1: faulty framing, even with chunked; the connection closes.
  const std::string inner = execute_bytes("smuggled");
  expect_refused_and_closed(harness,
                            "POST /execute HTTP/1.0\r\nContent-Type: application/json\r\n"
                            "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
                                inner,
                            "HTTP/1.0 chunked");
}

TEST(Framing, InvalidOrRepeatedContentLengthIsRefused) {
  ServerHarness harness;
  for (const std::string length :
       {"5, 5", "5,5", "+5", "-1", "0x10", "1e3", "5 5", "", "99999999999999999999999", "abc"}) {
    expect_refused_and_closed(harness, with_smuggled_body("Content-Length: " + length + "\r\n"),
                              "Content-Length: " + length);
  }
  expect_refused_and_closed(harness,
                            with_smuggled_body("Content-Length: 0\r\nContent-Length: 0\r\n"),
                            "two identical lines");
  expect_refused_and_closed(harness,
                            with_smuggled_body("Content-Length: 0\r\nContent-Length: 5\r\n"),
                            "two different lines");
}

TEST(Framing, MalformedChunksAreRefused) {
  ServerHarness harness;
  const std::string inner = execute_bytes("smuggled");
  for (const std::string chunks : {"zz\r\nhello\r\n0\r\n\r\n", "5\r\nhelloXX0\r\n\r\n",
                                   "fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
                                   "0x5\r\nhello\r\n0\r\n\r\n", "-5\r\nhello\r\n0\r\n\r\n"}) {
    expect_refused_and_closed(harness,
                              "POST /execute HTTP/1.1\r\nHost: x\r\nContent-Type: "
                              "application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
                                  chunks + inner,
                              "chunks " + chunks);
  }
}

TEST(Framing, ValidFramingsAreServed) {
  ServerHarness harness;
  Client client(harness.port);
  const std::string body = R"({"script":"framed"})";
  // chunked (any case, with an extension), and Content-Length with optional whitespace.
  const std::vector<std::string> headers = {
      "Transfer-Encoding: chunked", "Transfer-Encoding: Chunked", "Transfer-Encoding: chunked, ",
      "Content-Length:  " + std::to_string(body.size()) + " "};
  for (const std::string& header : headers) {
    SCOPED_TRACE(header);
    const bool chunked = header.starts_with("Transfer");
    std::string message =
        "POST /execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + header +
        "\r\n\r\n";
    if (chunked) {
      std::ostringstream size;
      size << std::hex << body.size();
      message += size.str() + ";ext=1\r\n" + body + "\r\n0\r\n\r\n";
    } else {
      message += body;
    }
    client.write_raw(message);
    const auto response = client.read();
    EXPECT_EQ(response.result_int(), 200u) << response.body();
    EXPECT_TRUE(response.keep_alive());
  }
  EXPECT_EQ(harness.executor.runs(), 4);
}

TEST(Framing, WithoutALengthTheBodyIsEmptyAndWhatFollowsIsNotRun) {
  ServerHarness harness;
  Client client(harness.port);
  // RFC 9112 6.3 item 7: no Content-Length, no Transfer-Encoding: the body is empty. The bytes
  // after the header are the next request, here not a valid one.
  client.write_raw(
      "POST /execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\r\n"
      R"({"script":"not-a-request"})");
  const auto first = client.read();
  EXPECT_EQ(first.result_int(), 400u);
  EXPECT_EQ(json_of(first).at("error_type").as_string(), "invalid_json");
  const auto second = client.read();
  EXPECT_EQ(second.result_int(), 400u);
  EXPECT_EQ(json_of(second).at("error_type").as_string(), "invalid_request");
  EXPECT_TRUE(client.wait_for_close());
  EXPECT_EQ(harness.executor.runs(), 0);
}

TEST(Framing, ABodyCutShortIsNeverRun) {
  ServerHarness harness;
  {
    Client client(harness.port);
    client.write_raw(
        "POST /execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 100\r\n\r\n{\"script\":\"cut\"}");
  }  // closed with 84 bytes missing
  // The server has seen the close once another connection is served after it.
  Client client(harness.port);
  EXPECT_EQ(client.send(make_request(http::verb::get, "/healthz")).result_int(), 200u);
  EXPECT_EQ(harness.executor.runs(), 0);
}

TEST(Host, MissingDuplicateOrInvalidHostIs400) {
  ServerHarness harness;
  for (const std::string& header :
       {std::string(), std::string("Host: a\r\nHost: a\r\n"), std::string("Host: a b\r\n"),
        std::string("Host: a/b\r\n"), std::string("Host: user@a\r\n"),
        std::string("Host: \xff\r\n")}) {
    SCOPED_TRACE(header);
    Client client(harness.port);
    client.write_raw("GET /healthz HTTP/1.1\r\n" + header + "\r\n");
    const auto response = client.read();
    EXPECT_EQ(response.result_int(), 400u) << response.body();
    EXPECT_EQ(json_of(response).at("error_type").as_string(), "invalid_request");
    EXPECT_TRUE(client.wait_for_close());
  }
}

TEST(Host, ValidHostsAndHttp10WithoutHostAreServed) {
  ServerHarness harness;
  for (const std::string& request :
       {std::string("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"),
        std::string("GET /healthz HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"),
        std::string("GET /healthz HTTP/1.1\r\nHost: example.com\r\n\r\n"),
        std::string("GET /healthz HTTP/1.1\r\nHost:\r\n\r\n"),  // empty: allowed (RFC 9110 7.2)
        std::string("GET /healthz HTTP/1.0\r\n\r\n")}) {
    SCOPED_TRACE(request);
    Client client(harness.port);
    client.write_raw(request);
    EXPECT_EQ(client.read().result_int(), 200u);
  }
}

TEST(Target, AbsoluteFormIsRoutedByItsPath) {
  ServerHarness harness;
  Client client(harness.port);
  client.write_raw("GET http://127.0.0.1:8080/healthz?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  auto response = client.read();
  EXPECT_EQ(response.result_int(), 200u) << response.body();
  EXPECT_EQ(json_of(response).at("status").as_string(), "ok");

  const std::string body = R"({"script":"absolute"})";
  client.write_raw(
      "POST HTTP://example.com/execute HTTP/1.1\r\nHost: example.com\r\n"
      "Content-Type: application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body);
  response = client.read();
  EXPECT_EQ(response.result_int(), 200u) << response.body();
  EXPECT_EQ(json_of(response).at("stdout").as_string(), "absolute");

  client.write_raw("GET http://example.com/nothing-here HTTP/1.1\r\nHost: example.com\r\n\r\n");
  EXPECT_EQ(client.read().result_int(), 404u);
}

TEST(EmptyLines, LeadingEmptyLinesAreIgnored) {
  ServerHarness harness;
  Client client(harness.port);
  // RFC 9112 2.2, and the CRLF some clients send after a POST body.
  client.write_raw("\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(client.read().result_int(), 200u);
  client.write_raw("\r\n\n\r\n");
  client.write_raw("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(client.read().result_int(), 200u);
  client.write_raw(execute_bytes("after-body") + "\r\n" + execute_bytes("next"));
  EXPECT_EQ(json_of(client.read()).at("stdout").as_string(), "after-body");
  EXPECT_EQ(json_of(client.read()).at("stdout").as_string(), "next");
}

TEST(Continue, Http10GetsNoInterimResponse) {
  ServerHarness harness;
  Client client(harness.port);
  // RFC 9110 10.1.1: an HTTP/1.0 request's 100-continue expectation is ignored.
  const std::string body = R"({"script":"ten"})";
  client.write_raw(
      "POST /execute HTTP/1.0\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body);
  const auto response = client.read();
  EXPECT_EQ(response.result_int(), 200u);
  EXPECT_EQ(json_of(response).at("stdout").as_string(), "ten");
  std::string rest;
  EXPECT_TRUE(client.wait_for_close(&rest));
  EXPECT_EQ(rest, "");
}

// Every response and every log line is JSON, whatever bytes a request carries in the parts the
// server echoes (path, Content-Type, method, X-Request-Id, field names in the body).
TEST(AlwaysJson, FuzzedEchoesStayValidJson) {
  ServerHarness harness;
  std::mt19937 random(20240511);
  const auto noise = [&](std::size_t max) {
    std::string out(random() % max + 1, '\0');
    for (auto& c : out) c = static_cast<char>(random() % 256);
    return out;
  };
  // Bytes a request line or a field value may carry (not CR, LF, NUL; no space in a target).
  const auto field_safe = [](std::string text, bool no_space) {
    for (auto& c : text) {
      if (c == '\r' || c == '\n' || c == '\0' || (no_space && (c == ' ' || c == '\t'))) c = '_';
    }
    return text;
  };
  int checked = 0;
  for (int i = 0; i < 300; ++i) {
    std::string request;
    switch (i % 4) {
      case 0:  // a path with any bytes: 404
        request = "GET /" + field_safe(noise(300), true) + " HTTP/1.1\r\nHost: x\r\n\r\n";
        break;
      case 1:  // a Content-Type with any bytes: 415
        request = "POST /execute HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Type: " +
                  field_safe(noise(300), false) + "\r\n\r\n{}";
        break;
      case 2:  // a 405 echoes the path
        request = "DELETE /healthz" + field_safe(noise(50), true) +
                  " HTTP/1.1\r\nHost: x\r\nX-Request-Id: " + field_safe(noise(40), false) +
                  "\r\n\r\n";
        break;
      case 3: {  // an unknown field name in the body (valid JSON text, but any code points)
        std::string name;
        for (int k = 0; k < 80; ++k)
          name += "\\u" + std::string(4, "0123456789abcdef"[random() % 16]);
        const std::string body = "{\"" + name + "\": 1, \"script\": \"x\"}";
        request =
            "POST /execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: " +
            std::to_string(body.size()) + "\r\n\r\n" + body;
        break;
      }
    }
    Client client(harness.port);
    client.write_raw(request);
    ClientResponse response;
    try {
      response = client.read();
    } catch (const std::exception&) {
      continue;  // refused by the parser before any echo (e.g. an invalid method): nothing sent
    }
    ++checked;
    boost::system::error_code ec;
    boost::json::parse(response.body(), ec);  // strict: invalid UTF-8 fails
    EXPECT_FALSE(ec) << "case " << i << ": " << response.result_int() << " "
                     << ::testing::PrintToString(response.body());
    EXPECT_TRUE(is_valid_utf8(response["X-Request-Id"]));
  }
  EXPECT_GT(checked, 250);
  harness.stop();
  harness.join();
  std::istringstream log(harness.log.str());
  int lines = 0;
  for (std::string line; std::getline(log, line); ++lines) {
    boost::system::error_code ec;
    const auto parsed = boost::json::parse(line, ec);
    ASSERT_FALSE(ec) << ::testing::PrintToString(line);
    EXPECT_TRUE(parsed.as_object().contains("ts")) << line;
  }
  EXPECT_GT(lines, 250);
}

}  // namespace
}  // namespace pysandbox::beast_server
