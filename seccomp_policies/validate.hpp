// Checks that make a policy order-independent: every call matches at most one action.
#pragma once

#include <string_view>
#include <vector>

#include "seccomp_policies/rule.hpp"

namespace pysandbox::seccomp_policies {

// libseccomp silently lets a rule without conditions override every conditional rule of the same
// syscall, and resolves overlapping conditional rules in an unspecified order. So: a syscall with
// an unconditional rule has no other rule, and conditional rules of one syscall with different
// actions must not be able to match the same call. Throws PolicyError naming the later line.
void check_rule_conflicts(const std::vector<Rule>& rules, std::string_view origin);

}  // namespace pysandbox::seccomp_policies
