#include "beast_server/execute_request.hpp"

#include <gtest/gtest.h>

#include <string>

namespace pysandbox::beast_server {
namespace {

RequestLimits limits() {
  return RequestLimits{.max_script_bytes = 100,
                       .default_timeout_ms = 5000,
                       .max_timeout_ms = 30000,
                       .default_memory_mb = 256,
                       .max_memory_mb = 2048};
}

// Asserts that `body` is refused with `status`/`type` and a message containing `mention`.
void expect_error(std::string_view body, unsigned status, std::string_view type,
                  std::string_view mention) {
  SCOPED_TRACE(std::string(body.substr(0, 80)));
  auto parsed = parse_execute_request(body, limits());
  const auto* error = std::get_if<ApiError>(&parsed);
  ASSERT_NE(error, nullptr) << "accepted";
  EXPECT_EQ(error->status, status);
  EXPECT_EQ(error->error_type, type);
  EXPECT_NE(error->message.find(mention), std::string::npos) << error->message;
}

executor::ExecuteRequest expect_ok(std::string_view body) {
  auto parsed = parse_execute_request(body, limits());
  if (const auto* error = std::get_if<ApiError>(&parsed)) {
    ADD_FAILURE() << "refused: " << error->message;
    return {};
  }
  return std::get<executor::ExecuteRequest>(parsed);
}

TEST(ParseExecuteRequest, HappyPathWithEveryField) {
  const auto request = expect_ok(
      R"({"script": "def main():\n  return 1\n", "timeout_ms": 1500, "memory_mb": 64,
          "stdin": "a\nb"})");
  EXPECT_EQ(request.script, "def main():\n  return 1\n");
  EXPECT_EQ(request.timeout, std::chrono::milliseconds(1500));
  EXPECT_EQ(request.memory_bytes, 64ull << 20);
  EXPECT_EQ(request.stdin_data, "a\nb");
}

TEST(ParseExecuteRequest, DefaultsApplyWhenOptionalFieldsAreAbsent) {
  const auto request = expect_ok(R"({"script": "x"})");
  EXPECT_EQ(request.timeout, std::chrono::milliseconds(5000));
  EXPECT_EQ(request.memory_bytes, 256ull << 20);
  EXPECT_EQ(request.stdin_data, "");
}

TEST(ParseExecuteRequest, IntegralFloatsCountAsIntegers) {
  const auto request = expect_ok(R"({"script": "x", "timeout_ms": 1e3, "memory_mb": 64.0})");
  EXPECT_EQ(request.timeout, std::chrono::milliseconds(1000));
  EXPECT_EQ(request.memory_bytes, 64ull << 20);
}

TEST(ParseExecuteRequest, LimitsAboveTheMaximumAreCapped) {
  const auto request =
      expect_ok(R"({"script": "x", "timeout_ms": 999999999999, "memory_mb": 1e300})");
  EXPECT_EQ(request.timeout, std::chrono::milliseconds(30000));
  EXPECT_EQ(request.memory_bytes, 2048ull << 20);
  const auto huge = expect_ok(R"({"script": "x", "timeout_ms": 18446744073709551615})");
  EXPECT_EQ(huge.timeout, std::chrono::milliseconds(30000));
}

TEST(ParseExecuteRequest, ScriptAtExactlyTheLimitIsAccepted) {
  const std::string body = R"({"script": ")" + std::string(100, 'x') + R"("})";
  EXPECT_EQ(expect_ok(body).script.size(), 100u);
}

TEST(ParseExecuteRequest, UnparsableBodyIsInvalidJson) {
  expect_error("", 400, "invalid_json", "not valid JSON");
  expect_error("{", 400, "invalid_json", "not valid JSON");
  expect_error(R"({"script": "x",})", 400, "invalid_json", "not valid JSON");
  expect_error("{\"script\": \"\xff\"}", 400, "invalid_json", "not valid JSON");
}

TEST(ParseExecuteRequest, NonObjectBodyIsInvalidRequest) {
  expect_error(R"(["script"])", 400, "invalid_request", "JSON object");
  expect_error(R"("def main(): pass")", 400, "invalid_request", "JSON object");
  expect_error("null", 400, "invalid_request", "JSON object");
  expect_error("42", 400, "invalid_request", "JSON object");
}

TEST(ParseExecuteRequest, ScriptMissingWrongTypeOrEmpty) {
  expect_error("{}", 400, "invalid_request", "'script' is required");
  expect_error(R"({"stdin": "x"})", 400, "invalid_request", "'script' is required");
  expect_error(R"({"script": 1})", 400, "invalid_request", "'script' must be a string");
  expect_error(R"({"script": null})", 400, "invalid_request", "'script' must be a string");
  expect_error(R"({"script": ["x"]})", 400, "invalid_request", "'script' must be a string");
  expect_error(R"({"script": ""})", 400, "invalid_request", "'script' must not be empty");
}

TEST(ParseExecuteRequest, ScriptOverTheLimitIsTooLarge) {
  const std::string body = R"({"script": ")" + std::string(101, 'x') + R"("})";
  expect_error(body, 413, "too_large", "101 bytes");
}

TEST(ParseExecuteRequest, TimeoutMustBeAPositiveInteger) {
  expect_error(R"({"script": "x", "timeout_ms": "100"})", 400, "invalid_request",
               "'timeout_ms' must be a positive integer");
  expect_error(R"({"script": "x", "timeout_ms": -5})", 400, "invalid_request", "timeout_ms");
  expect_error(R"({"script": "x", "timeout_ms": 0})", 400, "invalid_request", "timeout_ms");
  expect_error(R"({"script": "x", "timeout_ms": 1.5})", 400, "invalid_request", "fractional");
  expect_error(R"({"script": "x", "timeout_ms": true})", 400, "invalid_request", "boolean");
  expect_error(R"({"script": "x", "timeout_ms": null})", 400, "invalid_request", "null");
  expect_error(R"({"script": "x", "timeout_ms": -0.0})", 400, "invalid_request", "timeout_ms");
}

TEST(ParseExecuteRequest, MemoryMustBeAPositiveIntegerAboveTheFloor) {
  expect_error(R"({"script": "x", "memory_mb": "64"})", 400, "invalid_request",
               "'memory_mb' must be a positive integer");
  expect_error(R"({"script": "x", "memory_mb": -64})", 400, "invalid_request", "memory_mb");
  expect_error(R"({"script": "x", "memory_mb": 0})", 400, "invalid_request", "memory_mb");
  expect_error(R"({"script": "x", "memory_mb": 64.5})", 400, "invalid_request", "fractional");
  expect_error(R"({"script": "x", "memory_mb": false})", 400, "invalid_request", "boolean");
  expect_error(R"({"script": "x", "memory_mb": 16})", 400, "invalid_request", "at least 32");
}

TEST(ParseExecuteRequest, StdinMustBeAString) {
  expect_error(R"({"script": "x", "stdin": 5})", 400, "invalid_request",
               "'stdin' must be a string");
  expect_error(R"({"script": "x", "stdin": ["a"]})", 400, "invalid_request", "an array");
}

TEST(ParseExecuteRequest, UnknownFieldIsNamed) {
  expect_error(R"({"script": "x", "timeout": 100})", 400, "invalid_request",
               "Unknown field 'timeout'");
  // Reported even when another field is also wrong: a misspelt limit is the likelier mistake.
  expect_error(R"({"scirpt": "x"})", 400, "invalid_request", "Unknown field 'scirpt'");
  const std::string long_name(1000, 'k');
  auto parsed = parse_execute_request(R"({"script": "x", ")" + long_name + R"(": 1})", limits());
  ASSERT_TRUE(std::holds_alternative<ApiError>(parsed));
  EXPECT_LT(std::get<ApiError>(parsed).message.size(), 200u);
}

TEST(ParseExecuteRequest, DepthBombIsRefusedAsInvalidJson) {
  const std::string bomb =
      R"({"script": "x", "stdin": )" + std::string(100000, '[') + std::string(100000, ']') + "}";
  expect_error(bomb, 400, "invalid_json", "not valid JSON");
  // Within the bound, nesting is only refused as a wrong type.
  const std::string shallow =
      R"({"script": "x", "stdin": )" + std::string(10, '[') + std::string(10, ']') + "}";
  expect_error(shallow, 400, "invalid_request", "'stdin' must be a string");
}

TEST(ParseExecuteRequest, ParseMemoryIsBounded) {
  RequestLimits tight = limits();
  tight.max_json_memory_bytes = 64 << 10;
  std::string many_values = R"({"script": "x", "stdin": [)";
  for (int i = 0; i < 20000; ++i) many_values += "[0],";
  many_values += "0]}";
  auto parsed = parse_execute_request(many_values, tight);
  ASSERT_TRUE(std::holds_alternative<ApiError>(parsed));
  EXPECT_EQ(std::get<ApiError>(parsed).status, 413u);
  EXPECT_EQ(std::get<ApiError>(parsed).error_type, "too_large");
  // The default bound is generous: the same body only fails for stdin's type.
  expect_error(many_values, 400, "invalid_request", "'stdin' must be a string");
}

}  // namespace
}  // namespace pysandbox::beast_server
