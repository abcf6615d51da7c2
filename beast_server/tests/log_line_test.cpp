#include "beast_server/log_line.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "beast_server/utf8.hpp"

namespace pysandbox::beast_server {
namespace {

const std::chrono::system_clock::time_point kNow{std::chrono::milliseconds(1700000000123)};
constexpr std::string_view kTs = "2023-11-14T22:13:20.123Z";

boost::json::object parsed(const std::string& line) {
  boost::system::error_code ec;
  auto value = boost::json::parse(line, ec);
  EXPECT_FALSE(ec) << line;
  return value.is_object() ? value.as_object() : boost::json::object{};
}

TEST(StampLogLine, LinesWithTsPassUnchanged) {
  const std::string line = R"({"ts":"2020-01-01T00:00:00.000Z","event":"x"})";
  EXPECT_EQ(stamp_log_line(line, kNow), line);
}

TEST(StampLogLine, JsonWithoutTsGetsItFirst) {
  const std::string out = stamp_log_line(R"({"event":"probe","ok":true})", kNow);
  EXPECT_TRUE(out.starts_with(R"({"ts":")")) << out;
  const auto object = parsed(out);
  EXPECT_EQ(object.at("ts").as_string(), kTs);
  EXPECT_EQ(object.at("event").as_string(), "probe");
  EXPECT_TRUE(object.at("ok").as_bool());
}

TEST(StampLogLine, AnythingElseBecomesAMessage) {
  for (const std::string& line :
       {std::string("pysandbox cgroups: leaf left behind"), std::string("Traceback (most recent"),
        std::string("{not json"), std::string("[1,2]"), std::string("bytes \xff\xfe here"),
        std::string(R"({"ts": 5})"), std::string(), std::string("with CR\r")}) {
    const std::string out = stamp_log_line(line, kNow);
    EXPECT_TRUE(is_valid_utf8(out));
    const auto object = parsed(out);
    EXPECT_EQ(object.at("ts").as_string(), kTs) << line;
    if (line == R"({"ts": 5})") continue;  // JSON, with a bad ts: restamped
    EXPECT_EQ(object.at("event").as_string(), "log");
    EXPECT_EQ(object.at("component").as_string(), "stderr");
  }
  EXPECT_EQ(parsed(stamp_log_line("with CR\r", kNow)).at("message").as_string(), "with CR");
}

}  // namespace
}  // namespace pysandbox::beast_server
