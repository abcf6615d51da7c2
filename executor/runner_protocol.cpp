#include "executor/runner_protocol.hpp"

#include <array>
#include <boost/json/parse.hpp>
#include <boost/json/parse_options.hpp>
#include <cmath>
#include <utility>

namespace pysandbox::executor {

namespace {

constexpr std::array<std::pair<std::string_view, Status>, 6> kScriptErrors{{
    {"syntax_error", Status::kSyntaxError},
    {"no_main", Status::kNoMain},
    {"main_not_callable", Status::kMainNotCallable},
    {"exception", Status::kException},
    {"not_json_serializable", Status::kNotJsonSerializable},
    {"memory_limit", Status::kMemoryLimit},
}};

// Boost.JSON reads 1e400 (or an integer of 400 digits) as an infinite double and would write it
// back as a token no JSON parser accepts.
bool all_finite(const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::double_:
      return std::isfinite(v.get_double());
    case boost::json::kind::array:
      for (const auto& item : v.get_array())
        if (!all_finite(item)) return false;
      return true;
    case boost::json::kind::object:
      for (const auto& item : v.get_object())
        if (!all_finite(item.value())) return false;
      return true;
    default:
      return true;
  }
}

DecodedChannel invalid(std::string why) { return {ChannelState::kInvalid, std::move(why)}; }

}  // namespace

DecodedChannel decode_runner_result(std::string_view channel, RunOutcome& outcome) {
  if (channel.empty()) return {};
  boost::json::parse_options opts;
  opts.max_depth = 256;  // the runner refuses results nested deeper than 200
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(channel, ec, {}, opts);
  if (ec) return invalid("it is not valid JSON (" + ec.message() + ")");
  if (!doc.is_object()) return invalid("it is not a JSON object");
  auto& obj = doc.as_object();
  const auto* status = obj.if_contains("status");
  if (status == nullptr || !status->is_string()) return invalid("it has no status");
  if (status->as_string() == "ok") {
    auto* result = obj.if_contains("result");
    if (result == nullptr) return invalid("it has no result");
    if (!all_finite(*result)) return invalid("it holds a number JSON cannot represent");
    outcome.status = Status::kOk;
    outcome.result = std::move(*result);
    return {ChannelState::kDecoded, {}};
  }
  if (status->as_string() != "error") return invalid("its status is neither ok nor error");
  const auto* type = obj.if_contains("error_type");
  if (type == nullptr || !type->is_string()) return invalid("it has no error_type");
  for (const auto& [name, value] : kScriptErrors) {
    if (type->as_string() != name) continue;
    outcome.status = value;
    if (const auto* m = obj.if_contains("message"); m != nullptr && m->is_string())
      outcome.message = std::string(m->as_string());
    if (const auto* t = obj.if_contains("trace"); t != nullptr && t->is_string())
      outcome.trace = std::string(t->as_string());
    return {ChannelState::kDecoded, {}};
  }
  return invalid("its error_type is unknown");
}

}  // namespace pysandbox::executor
