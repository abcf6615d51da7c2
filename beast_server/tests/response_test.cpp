#include "beast_server/response.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "beast_server/json_text.hpp"

namespace pysandbox::beast_server {
namespace {

using executor::Status;

executor::RunOutcome ran(Status status) {
  executor::RunOutcome outcome;
  outcome.status = status;
  outcome.ran = true;
  outcome.stdout_data = "out\n";
  outcome.stderr_data = "err\n";
  outcome.trace = "Traceback ...";
  outcome.usage = {.wall_ms = 12.34567, .cpu_ms = 4.5, .peak_memory_bytes = 4096};
  outcome.isolation = executor::Isolation::kNamespaces;
  outcome.internal_detail = "clone3: EPERM";
  return outcome;
}

std::string serialized(const JsonResponse& response) {
  return boost::json::serialize(response.body);
}

TEST(MapOutcome, OkIs200WithTheContractFields) {
  auto outcome = ran(Status::kOk);
  outcome.result = boost::json::object{{"sum", 6}};
  outcome.truncated = true;
  outcome.start = executor::StartPath::kWarm;
  const auto response = map_outcome(outcome, "rid");
  EXPECT_EQ(response.status, 200u);
  EXPECT_EQ(response.error_type, "ok");
  const auto& body = response.body;
  EXPECT_EQ(body.at("result").at("sum").as_int64(), 6);
  EXPECT_EQ(body.at("stdout").as_string(), "out\n");
  EXPECT_EQ(body.at("stderr").as_string(), "err\n");
  EXPECT_DOUBLE_EQ(body.at("usage").at("wall_ms").as_double(), 12.346);
  EXPECT_DOUBLE_EQ(body.at("usage").at("cpu_ms").as_double(), 4.5);
  EXPECT_EQ(body.at("usage").at("peak_memory_bytes").as_uint64(), 4096u);
  EXPECT_EQ(body.at("isolation").as_string(), "namespaces");
  EXPECT_EQ(body.at("start").as_string(), "warm");
  EXPECT_TRUE(body.at("truncated").as_bool());
  EXPECT_FALSE(body.contains("error"));
  EXPECT_EQ(body.size(), 7u) << serialized(response);
}

TEST(MapOutcome, NullResultStaysNull) {
  const auto response = map_outcome(ran(Status::kOk), "rid");
  EXPECT_TRUE(response.body.at("result").is_null());
}

TEST(MapOutcome, ScriptFaultsAndLimitsAre422WithOutputWhenRan) {
  const std::pair<Status, std::string_view> cases[] = {
      {Status::kSyntaxError, "syntax_error"},
      {Status::kNoMain, "no_main"},
      {Status::kMainNotCallable, "main_not_callable"},
      {Status::kException, "exception"},
      {Status::kNotJsonSerializable, "not_json_serializable"},
      {Status::kTimeout, "timeout"},
      {Status::kMemoryLimit, "memory_limit"},
      {Status::kOutputLimit, "output_limit"},
  };
  for (const auto& [status, type] : cases) {
    SCOPED_TRACE(std::string(type));
    const auto response = map_outcome(ran(status), "rid-1");
    EXPECT_EQ(response.status, 422u);
    EXPECT_EQ(response.error_type, type);
    const auto& body = response.body;
    EXPECT_EQ(body.at("error_type").as_string(), type);
    EXPECT_FALSE(body.at("error").as_string().empty());
    EXPECT_EQ(body.at("request_id").as_string(), "rid-1");
    EXPECT_EQ(body.at("stdout").as_string(), "out\n");
    EXPECT_EQ(body.at("stderr").as_string(), "err\n");
    EXPECT_EQ(body.at("trace").as_string(), "Traceback ...");
    EXPECT_EQ(body.at("usage").at("peak_memory_bytes").as_uint64(), 4096u);
    EXPECT_EQ(body.at("isolation").as_string(), "namespaces");
    EXPECT_FALSE(body.at("truncated").as_bool());
    EXPECT_FALSE(body.contains("result"));
    EXPECT_EQ(serialized(response).find("EPERM"), std::string::npos);
  }
}

TEST(MapOutcome, ExecutorMessageIsUsedWhenPresent) {
  auto outcome = ran(Status::kException);
  outcome.message = "ZeroDivisionError: division by zero";
  EXPECT_EQ(map_outcome(outcome, "r").body.at("error").as_string(),
            "ZeroDivisionError: division by zero");
}

TEST(MapOutcome, OutputFieldsAbsentWhenTheScriptDidNotRun) {
  auto outcome = ran(Status::kTimeout);
  outcome.ran = false;
  const auto response = map_outcome(outcome, "rid");
  EXPECT_EQ(response.status, 422u);
  for (const char* key : {"stdout", "stderr", "trace", "usage", "isolation", "truncated"}) {
    EXPECT_FALSE(response.body.contains(key)) << key;
  }
  EXPECT_EQ(response.body.size(), 3u) << serialized(response);
}

TEST(MapOutcome, KilledNamesTheSignal) {
  auto outcome = ran(Status::kKilled);
  outcome.signal = SIGKILL;
  const auto response = map_outcome(outcome, "rid");
  EXPECT_EQ(response.status, 422u);
  EXPECT_EQ(response.error_type, "killed");
  EXPECT_EQ(response.body.at("signal").as_string(), "SIGKILL");
  EXPECT_EQ(response.body.at("error").as_string(), "killed by signal SIGKILL");
  outcome.signal = SIGSEGV;
  outcome.message = "segmentation fault";
  EXPECT_EQ(map_outcome(outcome, "rid").body.at("error").as_string(),
            "killed by signal SIGSEGV: segmentation fault");
}

TEST(MapOutcome, InternalIs500WithoutDetail) {
  auto outcome = ran(Status::kInternal);
  outcome.message = "mount failed";
  const auto response = map_outcome(outcome, "rid-9");
  EXPECT_EQ(response.status, 500u);
  EXPECT_EQ(response.error_type, "internal");
  EXPECT_EQ(response.body.at("error_type").as_string(), "internal");
  EXPECT_EQ(response.body.at("request_id").as_string(), "rid-9");
  EXPECT_NE(response.body.at("error").as_string().find("rid-9"), std::string::npos);
  const std::string text = serialized(response);
  EXPECT_EQ(text.find("EPERM"), std::string::npos);
  EXPECT_EQ(text.find("stdout"), std::string::npos);
  EXPECT_EQ(text.find("mount failed"), std::string::npos);
}

TEST(SignalName, KnownAndUnknown) {
  EXPECT_EQ(signal_name(SIGTERM), "SIGTERM");
  EXPECT_EQ(signal_name(SIGXCPU), "SIGXCPU");
  EXPECT_EQ(signal_name(1000), "signal 1000");
}

TEST(ErrorResponses, CarryTypeRequestIdAndHeaders) {
  auto api = error_response(ApiError{413, "too_large", "big"}, "r1");
  EXPECT_EQ(api.status, 413u);
  EXPECT_EQ(api.body.at("error").as_string(), "big");
  EXPECT_EQ(api.body.at("error_type").as_string(), "too_large");
  EXPECT_EQ(api.body.at("request_id").as_string(), "r1");

  auto overloaded = overloaded_response("r2", 1);
  EXPECT_EQ(overloaded.status, 429u);
  EXPECT_EQ(overloaded.error_type, "overloaded");
  ASSERT_EQ(overloaded.headers.size(), 1u);
  EXPECT_EQ(overloaded.headers[0].first, "Retry-After");
  EXPECT_EQ(overloaded.headers[0].second, "1");

  auto unavailable = unavailable_response("r3");
  EXPECT_EQ(unavailable.status, 503u);
  EXPECT_EQ(unavailable.body.at("error_type").as_string(), "unavailable");

  auto not_allowed = method_not_allowed_response("r4", "PUT", "/execute", "POST");
  EXPECT_EQ(not_allowed.status, 405u);
  ASSERT_EQ(not_allowed.headers.size(), 1u);
  EXPECT_EQ(not_allowed.headers[0].first, "Allow");
  EXPECT_EQ(not_allowed.headers[0].second, "POST");
  EXPECT_EQ(not_allowed.body.at("request_id").as_string(), "r4");

  auto not_found = not_found_response("r5", std::string(1000, 'p'));
  EXPECT_EQ(not_found.status, 404u);
  EXPECT_LT(not_found.body.at("error").as_string().size(), 300u);

  auto media = unsupported_media_type_response("r6", "text/plain");
  EXPECT_EQ(media.status, 415u);
  EXPECT_EQ(media.body.at("error_type").as_string(), "unsupported_media_type");
  EXPECT_NE(media.body.at("error").as_string().find("text/plain"), std::string::npos);

  auto internal = internal_error_response("r7");
  EXPECT_EQ(internal.status, 500u);
  EXPECT_EQ(internal.body.at("request_id").as_string(), "r7");
}

TEST(JsonText, NumbersReadLikeTheContract) {
  const auto value = boost::json::parse(
      R"({"a":3.1,"b":100.0,"c":0.30000000000000004,"d":1e300,"e":"q\"\n\u0001","f":[1,-2,)"
      R"(18446744073709551615],"g":null,"h":true,"i":{},"j":[],"k":-0.5})");
  const std::string text = to_json_text(value);
  EXPECT_EQ(text, R"({"a":3.1,"b":100.0,"c":0.30000000000000004,"d":1e+300,"e":"q\"\n\u0001",)"
                  R"("f":[1,-2,18446744073709551615],"g":null,"h":true,"i":{},"j":[],"k":-0.5})");
  EXPECT_EQ(boost::json::parse(text), value);
}

TEST(JsonText, UsageInAResponse) {
  auto outcome = ran(Status::kOk);
  outcome.usage.wall_ms = 3.1;
  const std::string text = to_json_text(map_outcome(outcome, "r").body);
  EXPECT_NE(text.find(R"("wall_ms":3.1,)"), std::string::npos) << text;
}

}  // namespace
}  // namespace pysandbox::beast_server
