// What every assembly of an executor shares: the sandbox's environment, the seccomp policy's
// compilation, and the startup log line of a probe.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "seccomp_policies/bpf_program.hpp"

namespace pysandbox::executor {

// Thread counts fixed before numpy/OpenBLAS load: their pools would otherwise size themselves to
// the host's cores, blow the address-space limit and the pids limit.
extern const std::vector<std::string> kSandboxEnv;

// One line on stderr per probed facility: {"event":"probe","capability":...}.
void log_capability(std::string_view name, bool ok, std::string_view detail, int err = 0);

// Compiles `path`; on failure returns null and sets `why`. A file that is missing or does not
// parse is the operator's error and throws (PolicyError); only compilation can fail because of
// the environment (libseccomp asking the kernel about actions).
std::unique_ptr<seccomp_policies::BpfProgram> compile_policy(const std::string& path,
                                                             std::string& why);

}  // namespace pysandbox::executor
