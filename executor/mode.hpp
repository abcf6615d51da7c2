// Which isolation mode the server runs in, decided from what the startup probes found: pure, so
// that every branch can be tested without the host that would take it.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "executor/settings.hpp"
#include "executor/types.hpp"
#include "probe/host_facts.hpp"

namespace pysandbox::executor {

using probe::HostFacts;

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
