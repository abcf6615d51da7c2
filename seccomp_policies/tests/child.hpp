// Runs code in a fork()ed child under a seccomp filter and reports how the child ended.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "seccomp_policies/bpf_program.hpp"

namespace pysandbox::seccomp_policies::testing {

// Exit codes the harness itself uses; probes return values below them.
inline constexpr int kNoNewPrivsFailed = 250;
inline constexpr int kInstallFailed = 251;
inline constexpr int kExecFailed = 252;

struct ChildResult {
  bool exited = false;
  int exit_code = -1;  // when exited
  int signal = 0;      // when killed
  std::string output;  // stdout and stderr, for run_program
  std::string describe() const;
};

// 0 if the raw syscall result says success, else errno (capped to probe exit codes).
int errno_of(long result);

// Child: no core dumps, PR_SET_NO_NEW_PRIVS, install(*program) (skipped if null), then
// _exit(probe()). The parent waits.
ChildResult run_probe(const BpfProgram* program, int (*probe)());

// Child as above, then execve(argv[0], argv, env) with stdout and stderr captured. Killed after
// `timeout`.
ChildResult run_program(const BpfProgram& program, const std::vector<std::string>& argv,
                        const std::vector<std::string>& env, std::chrono::milliseconds timeout);

}  // namespace pysandbox::seccomp_policies::testing
