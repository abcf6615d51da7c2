// Which isolation mode the server runs in, decided from what the startup probes found: pure, so
// that every branch can be tested without the host that would take it.
#pragma once

#include <boost/json/object.hpp>
#include <optional>
#include <string>

#include "executor/settings.hpp"
#include "executor/types.hpp"
#include "jail/capabilities.hpp"

namespace pysandbox::executor {

// One trial run of a jail: ok, or what failed.
struct TrialRun {
  bool ok = false;
  std::string detail;
};

// What the cgroup v2 probes found. Only probed when the mode may be `full`.
struct CgroupFacts {
  bool v2_usable = false;
  std::string v2_reason;  // why v2 is unusable (cgroups::V2Probe::reason)
  // Tried only when v2 is usable and the namespace jail works: the delegation was set up and the
  // namespace jail ran inside a leaf of it. Empty when that worked, otherwise what failed.
  std::optional<std::string> delegation_error;
  boost::json::object delegation;  // cgroups::Delegation::describe() when it worked
};

// Plain data: everything the decision reads.
struct HostFacts {
  jail::HostCapabilities capabilities;  // the probe's items, in its order
  bool seccomp_compiled = true;         // the seccomp policy compiles on this kernel
  std::string seccomp_error;            // why not
  // The whole namespace jail run once (`python -c pass`); unset when it was not tried.
  std::optional<TrialRun> namespace_jail;
  std::optional<CgroupFacts> cgroup;   // unset when not probed
  bool kill_process_available = true;  // SECCOMP_RET_KILL_PROCESS
  bool sched_autogroup = true;         // kernel.sched_autogroup_enabled
};

struct NamespaceVerdict {
  bool ok = false;
  std::string why;  // what is missing; empty when ok (or the namespace modes are not wanted)
};

struct ModeDecision {
  Isolation mode = Isolation::kRlimit;
  // Set when the server must not start (a forced mode or the floor cannot be had): the
  // operator-facing explanation.
  std::optional<std::string> refusal;
  NamespaceVerdict namespaces;
  bool cgroup = false;  // full mode's delegated cgroup is used
  // The /healthz "capabilities" object, and the cgroup keys /healthz carries ("cgroup": "none" |
  // "unavailable" with "reason" | the delegation's description).
  boost::json::object capabilities;
  boost::json::object cgroup_info;
  // What describe() reports besides the above.
  bool kill_process_available = true;
  bool sched_autogroup = true;
  std::uint64_t tmpfs_bytes = 0;
  std::string seccomp_policy_path;
  uid_t uid_base = 0;
  unsigned uid_count = 0;
};

// Whether the namespace jail is to be probed at all (not when rlimit mode is forced).
bool wants_namespaces(const Settings& settings);
// Whether cgroup v2 is to be probed: `full` is possible, and a forced mode is not already lost.
bool wants_cgroup(const Settings& settings, const NamespaceVerdict& namespaces);
// Whether the namespace jail can be tried (the policy compiles; clone3, pidfd and user
// namespaces work), and whether it worked.
bool namespace_trial_possible(const HostFacts& facts);
NamespaceVerdict namespace_verdict(const HostFacts& facts, const Settings& settings);

ModeDecision decide_mode(const HostFacts& facts, const Settings& settings);

// /healthz "isolation" object of the namespace modes (rlimit mode's is made by its assembly,
// from what that found).
boost::json::object describe(const ModeDecision& decision);

// /healthz prose shared with the rlimit mode's description.
std::string cpu_share_text(bool cgroup, bool sched_autogroup);
std::string kill_action_text(bool kill_process_available);

}  // namespace pysandbox::executor
