// Lowers parsed rules to a BPF program through libseccomp.
#pragma once

#include <string_view>
#include <vector>

#include "seccomp_policies/bpf_program.hpp"
#include "seccomp_policies/rule.hpp"

namespace pysandbox::seccomp_policies {

// Whether libseccomp may emit SECCOMP_RET_KILL_PROCESS here. It asks the kernel
// (seccomp(SECCOMP_GET_ACTION_AVAIL)); gVisor 2022-12 answers no, although its filters honour the
// return value.
bool kill_process_available() noexcept;

// Native architecture only (other architectures and x32 hit the bad-arch action, kill process).
// Where kill_process_available() is false, the bad-arch action and `kill_process` rules become
// kill_thread instead (the call still never runs; only the calling thread dies).
// Skips optional rules whose syscall this libseccomp does not know, and rules whose action is the
// default (libseccomp refuses them; they change nothing). Throws PolicyError ("origin:line: ...").
BpfProgram compile_rules(const Action& default_action, const std::vector<Rule>& rules,
                         std::string_view origin);

}  // namespace pysandbox::seccomp_policies
