// Runs the startup probes of the namespace modes, one log line each, and gathers what they found
// for the mode decision (executor/mode.hpp).
#pragma once

#include <optional>
#include <string>

#include "cgroups/delegation.hpp"
#include "executor/settings.hpp"
#include "jail/namespace_spawner.hpp"
#include "probe/host_facts.hpp"
#include "seccomp_policies/bpf_program.hpp"

namespace pysandbox::executor {

struct ProbedHost {
  probe::HostFacts facts;
  // Set up by the cgroup probe when it worked: full mode's cgroup, kept for the executor.
  std::optional<cgroups::Delegation> delegation;
};

// `bpf`: the compiled seccomp policy, null when it did not compile (`seccomp_why` says why);
// `config`: the namespace jail requests will use, tried once with `python -c pass` (and once more
// inside a cgroup leaf for full mode). Only what `settings` leaves possible is probed.
ProbedHost probe_host(const Settings& settings, const seccomp_policies::BpfProgram* bpf,
                      const std::string& seccomp_why, const jail::JailConfig& config);

}  // namespace pysandbox::executor
