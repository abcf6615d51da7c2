#include "seccomp_policies/validate.hpp"

#include <map>
#include <string>

#include "seccomp_policies/condition_sets.hpp"

namespace pysandbox::seccomp_policies {
namespace {

[[noreturn]] void fail(std::string_view origin, int line, const std::string& message) {
  throw PolicyError(std::string(origin) + ":" + std::to_string(line) + ": " + message);
}

}  // namespace

void check_rule_conflicts(const std::vector<Rule>& rules, std::string_view origin) {
  std::map<std::string, std::vector<const Rule*>> earlier;
  for (const Rule& rule : rules) {
    std::vector<const Rule*>& same = earlier[rule.syscall];
    const std::string name = "'" + rule.syscall + "'";
    for (const Rule* prior : same) {
      const std::string at = " at line " + std::to_string(prior->line);
      if (prior->conditions.empty() && rule.conditions.empty()) {
        fail(origin, rule.line, "duplicate rule for " + name + " (first" + at + ")");
      }
      if (prior->conditions.empty()) {
        fail(origin, rule.line,
             name + " already has a rule without conditions" + at +
                 "; libseccomp would silently drop this one");
      }
      if (rule.conditions.empty()) {
        fail(origin, rule.line,
             "a rule without conditions for " + name + " would silently override the rule" + at);
      }
      if (!(prior->action == rule.action) && overlap(prior->conditions, rule.conditions)) {
        fail(origin, rule.line,
             "conditions for " + name + " overlap the rule" + at +
                 " which has another action; make them exclusive");
      }
    }
    same.push_back(&rule);
  }
}

}  // namespace pysandbox::seccomp_policies
