// Which isolation mode the server runs in, decided from what the startup probes found: pure, so
// that every branch can be tested without the host that would take it.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

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

// /healthz "isolation" object of the namespace modes.
boost::json::object describe(const ModeDecision& decision);

// Where a run's orphans (daemons) go in rlimit mode without a PID namespace.
enum class OrphanReaper {
  kServerAsPid1,       // the server is pid 1 of its container
  kServerAsSubreaper,  // PR_SET_CHILD_SUBREAPER held
  kSystemInit,         // neither: the system's init reaps them
};

// What rlimit mode's assembly found and chose on this host: facts only, the prose is describe's.
struct RlimitFacts {
  bool seccomp = false;        // the filter compiled and holds
  std::string seccomp_reason;  // why not, when not
  std::string seccomp_policy_path;
  std::vector<std::string> rlimits;  // those that hold: "AS", "CPU", ...
  bool switch_ids = true;            // a uid per slot (the server is root)
  // Those the runs get, in the order describe lists them: pid, mount, network, ipc, uts.
  std::vector<std::string> namespaces;
  bool mount_proc = false;              // with pid and mount: a fresh /proc of their own
  std::vector<std::string> tmpfs_dirs;  // with mount: each gets a private tmpfs
  std::uint64_t tmpfs_bytes = 0;
  std::optional<std::string> scratch_path;   // nullopt: the runs work in their private /tmp
  std::vector<std::string> shared_tmp_dirs;  // cleaned of the run's files after it (switch_ids)
  OrphanReaper orphans = OrphanReaper::kServerAsSubreaper;
  // The server's /proc/<pid>/environ was found readable by the runs, so it was blanked: why.
  std::optional<std::string> environment_blanked;
  uid_t uid_base = 0;
  unsigned uid_count = 0;  // one per admission slot
};

// /healthz "isolation" object of rlimit mode.
boost::json::object describe_rlimit(const ModeDecision& decision, const RlimitFacts& facts);

// /healthz prose, exposed for tests.
std::string cpu_share_text(bool cgroup, bool sched_autogroup);
std::string kill_action_text(bool kill_process_available);

}  // namespace pysandbox::executor
