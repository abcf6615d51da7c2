#include "beast_server/execute_request.hpp"

#include <algorithm>
#include <boost/json/memory_resource.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/parse_options.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <new>
#include <optional>
#include <string>

#include "beast_server/config.hpp"

namespace pysandbox::beast_server {

namespace {

constexpr std::string_view kAllowedFields = "script, timeout_ms, memory_mb, stdin";
// Field names echoed in messages are cut: the name is attacker-chosen.
constexpr std::size_t kMaxEchoedName = 64;

// Counts what a parse allocates and refuses past a limit, so that the memory a body can cost is
// a stated bound rather than a consequence of max_body_bytes and Boost.JSON's layout.
class BoundedResource final : public boost::json::memory_resource {
 public:
  explicit BoundedResource(std::size_t limit) : limit_(limit) {}

 private:
  void* do_allocate(std::size_t bytes, std::size_t align) override {
    if (bytes > limit_ - used_) throw std::bad_alloc();
    void* memory = ::operator new(bytes, std::align_val_t(align));
    used_ += bytes;
    return memory;
  }
  void do_deallocate(void* memory, std::size_t bytes, std::size_t align) override {
    // Unsized delete: Boost 1.81's monotonic_resource hands back a smaller size than it asked
    // for (it forgets its block header), which a sized delete would turn into a mismatch.
    ::operator delete(memory, std::align_val_t(align));
    used_ -= std::min(bytes, used_);
  }
  bool do_is_equal(const boost::json::memory_resource& other) const noexcept override {
    return this == &other;
  }

  std::size_t limit_;
  std::size_t used_ = 0;
};

ApiError invalid(std::string message) {
  return ApiError{400, "invalid_request", std::move(message)};
}

std::string describe_kind(const boost::json::value& value) {
  switch (value.kind()) {
    case boost::json::kind::null:
      return "null";
    case boost::json::kind::bool_:
      return "a boolean";
    case boost::json::kind::string:
      return "a string";
    case boost::json::kind::array:
      return "an array";
    case boost::json::kind::object:
      return "an object";
    case boost::json::kind::int64:
    case boost::json::kind::uint64:
    case boost::json::kind::double_:
      return "a number";
  }
  return "a value of unknown type";
}

// A positive integer, capped at `max`. JSON has one number type, so 1000.0 and 1e3 are
// accepted as 1000; fractions, zero, negatives, booleans and other types are errors.
std::variant<std::uint64_t, ApiError> positive_integer(const boost::json::value& value,
                                                       std::string_view field, std::uint64_t max,
                                                       std::string_view unit) {
  const std::string expected =
      "field '" + std::string(field) + "' must be a positive integer (" + std::string(unit) + ")";
  std::uint64_t number = 0;
  switch (value.kind()) {
    case boost::json::kind::int64: {
      const std::int64_t v = value.get_int64();
      if (v <= 0) return invalid(expected + ", got " + std::to_string(v));
      number = static_cast<std::uint64_t>(v);
      break;
    }
    case boost::json::kind::uint64:
      number = value.get_uint64();
      if (number == 0) return invalid(expected + ", got 0");
      break;
    case boost::json::kind::double_: {
      const double v = value.get_double();
      if (!std::isfinite(v) || std::trunc(v) != v) {
        return invalid(expected + ", got a fractional number");
      }
      if (v <= 0) return invalid(expected + ", got a number below 1");
      // Anything beyond the cap is capped; compare in double to avoid an overflowing cast.
      number = v >= static_cast<double>(max) ? max : static_cast<std::uint64_t>(v);
      break;
    }
    default:
      return invalid(expected + ", got " + describe_kind(value));
  }
  return number > max ? max : number;
}

}  // namespace

RequestLimits request_limits(const Config& config) {
  return RequestLimits{
      .max_script_bytes = config.max_script_bytes,
      .default_timeout_ms = config.default_timeout_ms,
      .max_timeout_ms = config.max_timeout_ms,
      .default_memory_mb = config.default_memory_mb,
      .max_memory_mb = config.max_memory_mb,
  };
}

std::variant<executor::ExecuteRequest, ApiError> parse_execute_request(
    std::string_view body, const RequestLimits& limits) {
  boost::json::parse_options options;
  options.max_depth = kMaxJsonDepth;
  BoundedResource bounded(limits.max_json_memory_bytes != 0 ? limits.max_json_memory_bytes
                                                            : 32 * body.size() + (1u << 20));
  // One arena for the whole document: freed at once when the request has been copied out.
  boost::json::monotonic_resource arena(4096, &bounded);
  boost::system::error_code ec;
  boost::json::value document;
  try {
    document = boost::json::parse(body, ec, &arena, options);
  } catch (const std::bad_alloc&) {
    return ApiError{413, "too_large",
                    "The request body takes too much memory to parse; send fewer values."};
  }
  if (ec) {
    return ApiError{400, "invalid_json",
                    "The request body is not valid JSON: " + ec.message() + "."};
  }
  const boost::json::object* object = document.if_object();
  if (object == nullptr) {
    return invalid("The request body must be a JSON object, got " + describe_kind(document) + ".");
  }

  // Unknown fields first: a misspelt limit must not be silently ignored, even if another field
  // is wrong too.
  for (const auto& [key, value] : *object) {
    if (key != "script" && key != "timeout_ms" && key != "memory_mb" && key != "stdin") {
      std::string name(key.substr(0, kMaxEchoedName));
      if (key.size() > kMaxEchoedName) name += "...";
      return invalid("Unknown field '" + name + "' (allowed: " + std::string(kAllowedFields) +
                     ").");
    }
  }

  executor::ExecuteRequest request;

  const boost::json::value* script = object->if_contains("script");
  if (script == nullptr) return invalid("Field 'script' is required.");
  const boost::json::string* script_text = script->if_string();
  if (script_text == nullptr) {
    return invalid("Field 'script' must be a string, got " + describe_kind(*script) + ".");
  }
  if (script_text->empty()) return invalid("Field 'script' must not be empty.");
  if (script_text->size() > limits.max_script_bytes) {
    return ApiError{413, "too_large",
                    "Field 'script' is " + std::to_string(script_text->size()) +
                        " bytes; the limit is " + std::to_string(limits.max_script_bytes) +
                        " bytes."};
  }
  request.script.assign(script_text->data(), script_text->size());

  std::uint64_t timeout_ms = limits.default_timeout_ms;
  if (const boost::json::value* value = object->if_contains("timeout_ms")) {
    auto parsed = positive_integer(*value, "timeout_ms", limits.max_timeout_ms, "milliseconds");
    if (auto* error = std::get_if<ApiError>(&parsed)) {
      error->message += ".";
      return std::move(*error);
    }
    timeout_ms = std::get<std::uint64_t>(parsed);
  }
  request.timeout = std::chrono::milliseconds(timeout_ms);

  std::uint64_t memory_mb = limits.default_memory_mb;
  if (const boost::json::value* value = object->if_contains("memory_mb")) {
    auto parsed = positive_integer(*value, "memory_mb", limits.max_memory_mb, "MiB");
    if (auto* error = std::get_if<ApiError>(&parsed)) {
      error->message += ".";
      return std::move(*error);
    }
    memory_mb = std::get<std::uint64_t>(parsed);
    if (memory_mb < kMinMemoryMb) {
      return invalid("Field 'memory_mb' must be at least " + std::to_string(kMinMemoryMb) +
                     " (MiB), got " + std::to_string(memory_mb) + ".");
    }
  }
  request.memory_bytes = memory_mb << 20;

  if (const boost::json::value* value = object->if_contains("stdin")) {
    const boost::json::string* text = value->if_string();
    if (text == nullptr) {
      return invalid("Field 'stdin' must be a string, got " + describe_kind(*value) + ".");
    }
    request.stdin_data.assign(text->data(), text->size());
  }
  return request;
}

}  // namespace pysandbox::beast_server
