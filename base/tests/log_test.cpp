#include "base/log.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <boost/json/parse.hpp>
#include <chrono>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "base/json_line.hpp"

namespace pysandbox::base {
namespace {

using namespace std::chrono_literals;

// Strict: Boost.JSON rejects invalid UTF-8 and raw control characters in strings.
boost::json::object parse_line(std::string_view line) {
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(line, ec);
  EXPECT_FALSE(ec) << ::testing::PrintToString(std::string(line));
  if (ec || !value.is_object()) {
    ADD_FAILURE() << "not an object: " << ::testing::PrintToString(std::string(line));
    return {};
  }
  return value.as_object();
}

std::string text_of(const boost::json::value& value) {
  return value.is_string() ? std::string(value.get_string()) : "<not a string>";
}

void expect_header(const boost::json::object& line, std::string_view event,
                   std::string_view component) {
  const auto* ts = line.if_contains("ts");
  ASSERT_TRUE(ts != nullptr && ts->is_string());
  EXPECT_TRUE(std::regex_match(std::string(ts->get_string()),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")))
      << ts->get_string();
  EXPECT_EQ(text_of(line.at("event")), event);
  EXPECT_EQ(text_of(line.at("component")), component);
}

// Control characters, non-ASCII, invalid UTF-8 (a lone continuation byte, a truncated sequence,
// an overlong '/', a surrogate, past U+10FFFF) and the JSON specials.
const std::string kNasty = std::string("a\"b\\c/\b\f\n\r\t\x01\x1f\x7f", 14) +
                           std::string(1, '\0') + "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80" + "\x80" +
                           "\xe2\x82" + "\xc0\xaf" + "\xed\xa0\x80" + "\xf4\x90\x80\x80" + "end";
const std::string kNastyDecoded =
    std::string("a\"b\\c/\b\f\n\r\t\x01\x1f\x7f", 14) + std::string(1, '\0') +
    "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80" + "\xef\xbf\xbd" + "\xef\xbf\xbd\xef\xbf\xbd" +
    "\xef\xbf\xbd\xef\xbf\xbd" + "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" +
    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" + "end";

TEST(FormatTimestamp, IsRfc3339UtcWithMilliseconds) {
  const std::chrono::system_clock::time_point when{1714564800123ms};
  EXPECT_EQ(format_timestamp(when), "2024-05-01T12:00:00.123Z");
  EXPECT_EQ(format_timestamp(std::chrono::system_clock::time_point{}), "1970-01-01T00:00:00.000Z");
  // A leap day and the end of a year.
  EXPECT_EQ(format_timestamp(std::chrono::system_clock::time_point{951782400000ms}),
            "2000-02-29T00:00:00.000Z");
  EXPECT_EQ(format_timestamp(std::chrono::system_clock::time_point{1704067199999ms}),
            "2023-12-31T23:59:59.999Z");
}

TEST(FormatLine, HasTsEventComponentThenTheFieldsInOrder) {
  const std::chrono::system_clock::time_point when{1714564800123ms};
  const std::string line = format_line(
      "server", "startup", {{"port", 8080}, {"ratio", 1.0}, {"ok", true}, {"none", nullptr}}, when);
  EXPECT_EQ(line, R"({"ts":"2024-05-01T12:00:00.123Z","event":"startup","component":"server",)"
                  R"("port":8080,"ratio":1.0,"ok":true,"none":null})");
}

TEST(FormatLine, FieldsCannotOverrideTheHeader) {
  const auto line = parse_line(format_line(
      "pool", "zygote_exit", {{"ts", "x"}, {"event", "y"}, {"component", "z"}, {"pid", 7}},
      std::chrono::system_clock::now()));
  expect_header(line, "zygote_exit", "pool");
  EXPECT_EQ(line.at("pid"), 7);
  EXPECT_EQ(line.size(), 4u);
}

TEST(FormatLine, EscapesControlCharactersAndReplacesInvalidUtf8) {
  const std::string text = format_line(
      kNasty, kNasty, {{kNasty, kNasty}, {"nested", {{"k", boost::json::array{kNasty}}}}},
      std::chrono::system_clock::now());
  EXPECT_EQ(text.find('\n'), std::string::npos);
  const auto line = parse_line(text);
  expect_header(line, kNastyDecoded, kNastyDecoded);
  EXPECT_EQ(text_of(line.at(kNastyDecoded)), kNastyDecoded);
  EXPECT_EQ(text_of(line.at("nested").at("k").at(0)), kNastyDecoded);
}

TEST(JsonLine, WritesTheSameFormat) {
  JsonLine line("zygote_error", "zygote");
  line.field("what", kNasty).field("errno", 13).field("min", INT64_MIN).field("cut", false);
  const std::string_view text = line.text();
  ASSERT_TRUE(text.ends_with("}\n"));
  EXPECT_EQ(text.find('\n'), text.size() - 1);
  const auto parsed = parse_line(text.substr(0, text.size() - 1));
  expect_header(parsed, "zygote_error", "zygote");
  EXPECT_EQ(text_of(parsed.at("what")), kNastyDecoded);
  EXPECT_EQ(parsed.at("errno"), 13);
  EXPECT_EQ(parsed.at("min"), INT64_MIN);
  EXPECT_EQ(parsed.at("cut"), false);
}

TEST(JsonLine, ALineTooLongIsCutButStaysValid) {
  // Every length around the capacity, so that the cut falls on every kind of position: inside
  // an escape, inside a multi-byte character, on a key, on a number.
  for (std::size_t n = JsonLine::kCapacity - 200; n < JsonLine::kCapacity + 50; ++n) {
    std::string value;
    while (value.size() < n) value += "\xe2\x82\xac\n\x01";
    JsonLine line("e", "c");
    line.field("a", value).field("number", 12345).field("b", "x");
    const std::string_view text = line.text();
    ASSERT_LE(text.size(), JsonLine::kCapacity);
    ASSERT_TRUE(text.ends_with("}\n"));
    const auto parsed = parse_line(text.substr(0, text.size() - 1));
    expect_header(parsed, "e", "c");
    for (int k = 0; k < 40; ++k) {
      JsonLine keyed("e", "c");
      keyed.field("a", value.substr(0, n - 100))
          .field(std::string(static_cast<std::size_t>(k), 'k'), 1);
      const std::string_view t = keyed.text();
      parse_line(t.substr(0, t.size() - 1));
    }
  }
}

TEST(Logger, ConcurrentLinesAreWholeAndEachParses) {
  std::array<int, 2> fds{};
  ASSERT_EQ(::pipe(fds.data()), 0);
  std::string received;
  std::thread reader([&] {
    std::array<char, 65536> buffer{};
    for (;;) {
      const ssize_t n = ::read(fds[0], buffer.data(), buffer.size());
      if (n <= 0) break;
      received.append(buffer.data(), static_cast<std::size_t>(n));
    }
  });
  constexpr int kThreads = 4, kLines = 200;
  {
    const Logger logger("executor", fds[1]);
    std::vector<std::thread> writers;
    for (int t = 0; t < kThreads; ++t) {
      writers.emplace_back([&, t] {
        // Longer than PIPE_BUF, so only the lock keeps lines whole.
        const std::string big(8192, static_cast<char>('a' + t));
        for (int i = 0; i < kLines; ++i)
          logger.log("tick", {{"thread", t}, {"i", i}, {"big", big}});
      });
    }
    for (auto& w : writers) w.join();
  }
  ::close(fds[1]);
  reader.join();
  ::close(fds[0]);
  std::size_t lines = 0;
  std::size_t start = 0;
  while (start < received.size()) {
    const std::size_t end = received.find('\n', start);
    ASSERT_NE(end, std::string::npos) << "the last line has no newline";
    const auto line = parse_line(std::string_view(received).substr(start, end - start));
    expect_header(line, "tick", "executor");
    ++lines;
    start = end + 1;
  }
  EXPECT_EQ(lines, static_cast<std::size_t>(kThreads * kLines));
}

}  // namespace
}  // namespace pysandbox::base
