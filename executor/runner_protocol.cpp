#include "executor/runner_protocol.hpp"

#include <array>
#include <boost/json/parse.hpp>
#include <boost/json/parse_options.hpp>
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
}  // namespace

bool decode_runner_result(std::string_view channel, RunOutcome& outcome) {
  boost::json::parse_options opts;
  opts.max_depth = 256;  // the runner refuses results nested deeper than 200
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(channel, ec, {}, opts);
  if (ec || !doc.is_object()) return false;
  auto& obj = doc.as_object();
  const auto* status = obj.if_contains("status");
  if (status == nullptr || !status->is_string()) return false;
  if (status->as_string() == "ok") {
    auto* result = obj.if_contains("result");
    if (result == nullptr) return false;
    outcome.status = Status::kOk;
    outcome.result = std::move(*result);
    return true;
  }
  if (status->as_string() != "error") return false;
  const auto* type = obj.if_contains("error_type");
  if (type == nullptr || !type->is_string()) return false;
  for (const auto& [name, value] : kScriptErrors) {
    if (type->as_string() != name) continue;
    outcome.status = value;
    if (const auto* m = obj.if_contains("message"); m != nullptr && m->is_string())
      outcome.message = std::string(m->as_string());
    if (const auto* t = obj.if_contains("trace"); t != nullptr && t->is_string())
      outcome.trace = std::string(t->as_string());
    return true;
  }
  return false;
}

}  // namespace pysandbox::executor
