// What the startup probes found, as plain data: the input of the isolation-mode decision
// (executor/mode.hpp).
#pragma once

#include <boost/json/object.hpp>
#include <optional>
#include <string>

#include "probe/facility.hpp"
#include "probe/jail_trial.hpp"

namespace pysandbox::probe {

// What the cgroup v2 probes found. Only probed when the mode may be `full`.
struct CgroupFacts {
  bool v2_usable = false;
  std::string v2_reason;  // why v2 is unusable (cgroups::V2Probe::reason)
  // Tried only when v2 is usable and the namespace jail works: the delegation was set up and the
  // namespace jail ran inside a leaf of it. Empty when that worked, otherwise what failed.
  std::optional<std::string> delegation_error;
  boost::json::object delegation;  // cgroups::Delegation::describe() when it worked
};

struct HostFacts {
  Facilities facilities;         // namespace_facilities(), in its order
  bool seccomp_compiled = true;  // the seccomp policy compiles on this kernel
  std::string seccomp_error;     // why not
  // The whole namespace jail run once (`python -c pass`); unset when it was not tried.
  std::optional<TrialRun> namespace_jail;
  std::optional<CgroupFacts> cgroup;   // unset when not probed
  bool kill_process_available = true;  // SECCOMP_RET_KILL_PROCESS
  bool sched_autogroup = true;         // kernel.sched_autogroup_enabled
};

}  // namespace pysandbox::probe
