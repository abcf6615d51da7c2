// Lowers parsed rules to a BPF program through libseccomp.
#pragma once

#include <string_view>
#include <vector>

#include "seccomp_policies/bpf_program.hpp"
#include "seccomp_policies/rule.hpp"

namespace pysandbox::seccomp_policies {

// Native architecture only (other architectures and x32 hit the bad-arch action, kill process).
// Skips optional rules whose syscall this libseccomp does not know, and rules whose action is the
// default (libseccomp refuses them; they change nothing). Throws PolicyError ("origin:line: ...").
BpfProgram compile_rules(const Action& default_action, const std::vector<Rule>& rules,
                         std::string_view origin);

}  // namespace pysandbox::seccomp_policies
