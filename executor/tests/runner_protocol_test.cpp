#include "executor/runner_protocol.hpp"

#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>
#include <string>
#include <vector>

namespace pysandbox::executor {
namespace {

TEST(RunnerProtocol, DecodesOkWithItsResult) {
  RunOutcome o;
  ASSERT_EQ(
      decode_runner_result(R"({"status": "ok", "result": {"sum": 6, "x": [1, null]}})", o).state,
      ChannelState::kDecoded);
  EXPECT_EQ(o.status, Status::kOk);
  EXPECT_EQ(boost::json::serialize(o.result), R"({"sum":6,"x":[1,null]})");
}

TEST(RunnerProtocol, DecodesNullResult) {
  RunOutcome o;
  ASSERT_EQ(decode_runner_result(R"({"status": "ok", "result": null})", o).state,
            ChannelState::kDecoded);
  EXPECT_EQ(o.status, Status::kOk);
  EXPECT_TRUE(o.result.is_null());
}

TEST(RunnerProtocol, DecodesEachScriptError) {
  const std::pair<const char*, Status> cases[] = {
      {"syntax_error", Status::kSyntaxError},
      {"no_main", Status::kNoMain},
      {"main_not_callable", Status::kMainNotCallable},
      {"exception", Status::kException},
      {"not_json_serializable", Status::kNotJsonSerializable},
      {"memory_limit", Status::kMemoryLimit},
  };
  for (const auto& [name, status] : cases) {
    RunOutcome o;
    const std::string doc = std::string(R"({"status":"error","error_type":")") + name +
                            R"(","message":"m","trace":"t"})";
    ASSERT_EQ(decode_runner_result(doc, o).state, ChannelState::kDecoded) << name;
    EXPECT_EQ(o.status, status) << name;
    EXPECT_EQ(o.message, "m");
    EXPECT_EQ(o.trace, "t");
  }
}

TEST(RunnerProtocol, AnEmptyChannelIsNotAMessage) {
  RunOutcome o;
  EXPECT_EQ(decode_runner_result("", o).state, ChannelState::kEmpty);
}

// The channel is the script's to write: whatever it holds, what is decoded must serialize to
// valid JSON, or be refused.
TEST(RunnerProtocol, RefusesNumbersJsonCannotCarryAndTextItCannotHold) {
  const std::string digits(5000, '9');
  for (const std::string& bad : std::vector<std::string>{
           std::string(R"({"status":"ok","result":[1e400]})"), R"({"status":"ok","result":-1e999})",
           R"({"status":"ok","result":{"a":[{"b":1e309}]}})", R"({"status":"ok","result":NaN})",
           R"({"status":"ok","result":Infinity})", R"({"status":"ok","result":)" + digits + "}",
           R"({"status":"ok","result":"\ud800"})", "{\"status\":\"ok\",\"result\":\"\xff\xfe\"}"}) {
    RunOutcome o;
    const auto d = decode_runner_result(bad, o);
    EXPECT_EQ(d.state, ChannelState::kInvalid) << bad;
    EXPECT_FALSE(d.why.empty());
  }
  // Large but finite: JSON can carry it (as a double).
  RunOutcome o;
  EXPECT_EQ(
      decode_runner_result(R"({"status":"ok","result":123456789012345678901234567890})", o).state,
      ChannelState::kDecoded);
}

TEST(RunnerProtocol, RejectsAnythingElse) {
  for (const char* bad : {"{", "[]", R"({"status":"ok"})", R"({"status":"weird"})",
                          R"({"status":"error","error_type":"internal"})",
                          R"({"status":"error","error_type":"timeout"})",
                          R"({"status":"ok","result":1}{"status":"ok","result":2})"}) {
    RunOutcome o;
    EXPECT_EQ(decode_runner_result(bad, o).state, ChannelState::kInvalid) << bad;
  }
}

TEST(ErrorType, NamesMatchTheContract) {
  EXPECT_EQ(error_type(Status::kOutputLimit), "output_limit");
  EXPECT_EQ(error_type(Status::kMemoryLimit), "memory_limit");
  EXPECT_EQ(error_type(Status::kKilled), "killed");
  EXPECT_EQ(error_type(Status::kInternal), "internal");
  EXPECT_EQ(to_string(Isolation::kNamespaces), "namespaces");
  EXPECT_EQ(isolation_from_string("full"), Isolation::kFull);
  EXPECT_FALSE(isolation_from_string("strong"));
  EXPECT_LT(Isolation::kRlimit, Isolation::kNamespaces);
}

}  // namespace
}  // namespace pysandbox::executor
