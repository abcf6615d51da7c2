// Turns policy text into a default action and rules, rejecting anything doubtful with
// "origin:line: what".
#pragma once

#include <string_view>
#include <vector>

#include "seccomp_policies/rule.hpp"

namespace pysandbox::seccomp_policies {

struct ParsedPolicy {
  Action default_action;
  std::vector<Rule> rules;  // in file order
};

// Syntax, names (syscalls via libseccomp, errno names) and the rule-conflict checks of
// validate.hpp. Throws PolicyError.
ParsedPolicy parse_policy(std::string_view text, std::string_view origin);

}  // namespace pysandbox::seccomp_policies
