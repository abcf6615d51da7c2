#include "executor/types.hpp"

#include <array>
#include <utility>

namespace pysandbox::executor {

namespace {
constexpr std::array<std::pair<Isolation, std::string_view>, 3> kIsolationNames{{
    {Isolation::kRlimit, "rlimit"},
    {Isolation::kNamespaces, "namespaces"},
    {Isolation::kFull, "full"},
}};
}  // namespace

std::string_view to_string(Isolation mode) {
  for (const auto& [value, name] : kIsolationNames) {
    if (value == mode) return name;
  }
  return "unknown";
}

std::optional<Isolation> isolation_from_string(std::string_view name) {
  for (const auto& [value, known] : kIsolationNames) {
    if (known == name) return value;
  }
  return std::nullopt;
}

std::string_view to_string(StartPath start) { return start == StartPath::kWarm ? "warm" : "cold"; }

std::string start_label(const RunOutcome& outcome) {
  if (outcome.start == StartPath::kWarm) return "warm:" + outcome.zygote;
  return std::string(to_string(outcome.start));
}

std::string_view error_type(Status status) {
  switch (status) {
    case Status::kOk:
      return "ok";
    case Status::kSyntaxError:
      return "syntax_error";
    case Status::kNoMain:
      return "no_main";
    case Status::kMainNotCallable:
      return "main_not_callable";
    case Status::kException:
      return "exception";
    case Status::kNotJsonSerializable:
      return "not_json_serializable";
    case Status::kTimeout:
      return "timeout";
    case Status::kMemoryLimit:
      return "memory_limit";
    case Status::kOutputLimit:
      return "output_limit";
    case Status::kKilled:
      return "killed";
    case Status::kCancelled:
      return "cancelled";
    case Status::kInternal:
      return "internal";
  }
  return "internal";
}

}  // namespace pysandbox::executor
