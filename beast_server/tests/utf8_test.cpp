#include "beast_server/utf8.hpp"

#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <random>

#include "beast_server/json_text.hpp"
#include "executor/output_capture.hpp"

namespace pysandbox::beast_server {
namespace {

TEST(Utf8, ValidityTable) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("ascii"));
  EXPECT_TRUE(is_valid_utf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
  EXPECT_FALSE(is_valid_utf8("\xff"));
  EXPECT_FALSE(is_valid_utf8("\xc3"));              // cut short
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // a surrogate
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // past U+10FFFF
}

TEST(Utf8, ReplacementMatchesTheExecutorsRule) {
  // One stray byte must read the same in a response's stdout (the executor's sanitizer) and
  // in an echoed path (ours).
  std::mt19937 random(7);
  for (int i = 0; i < 2000; ++i) {
    std::string bytes(random() % 40, '\0');
    for (auto& c : bytes) c = static_cast<char>(random() % 256);
    const std::string ours = to_valid_utf8(bytes);
    EXPECT_EQ(ours, executor::sanitize_utf8(bytes));
    EXPECT_TRUE(is_valid_utf8(ours));
  }
}

TEST(Utf8, PrefixNeverEndsInsideACharacter) {
  const std::string text = "a\xc3\xa9\xe2\x82\xac";  // a, é (2 bytes), € (3 bytes)
  EXPECT_EQ(utf8_prefix(text, 10), text);
  EXPECT_EQ(utf8_prefix(text, 1), "a");
  EXPECT_EQ(utf8_prefix(text, 2), "a");
  EXPECT_EQ(utf8_prefix(text, 3), "a\xc3\xa9");
  EXPECT_EQ(utf8_prefix(text, 4), "a\xc3\xa9");
  EXPECT_EQ(utf8_prefix(text, 5), "a\xc3\xa9");
  EXPECT_EQ(utf8_prefix(text, 6), text);
}

TEST(Utf8, EscapedSizeMatchesBoostJson) {
  for (int c = 0; c < 0x80; ++c) {
    const std::string text(1, static_cast<char>(c));
    const std::string json = boost::json::serialize(boost::json::string(text));
    EXPECT_EQ(json_escaped_size(text), json.size() - 2) << c;
  }
  const std::string mixed = "line\n\ttab \"q\" \\ \x01\x1f\x7f \xc3\xa9";
  EXPECT_EQ(json_escaped_size(mixed),
            boost::json::serialize(boost::json::string(mixed)).size() - 2);
}

TEST(Utf8, EscapedPrefixFitsTheCap) {
  const std::string control(100, '\x01');
  EXPECT_EQ(escaped_prefix(control, 60).size(), 10u);
  EXPECT_EQ(escaped_prefix(control, 59).size(), 9u);
  const std::string accents = "\xc3\xa9\xc3\xa9\xc3\xa9";
  EXPECT_EQ(escaped_prefix(accents, 3), "\xc3\xa9");
  EXPECT_EQ(escaped_prefix("abc", 100), "abc");
}

TEST(JsonText, InvalidUtf8IsReplacedNotEmitted) {
  const boost::json::object object{{"path", "/\xff\xfe"}, {"\xc3", "key"}};
  const std::string text = to_json_text(object);
  EXPECT_TRUE(is_valid_utf8(text));
  EXPECT_EQ(text, "{\"path\":\"/\xEF\xBF\xBD\xEF\xBF\xBD\",\"\xEF\xBF\xBD\":\"key\"}");
}

}  // namespace
}  // namespace pysandbox::beast_server
