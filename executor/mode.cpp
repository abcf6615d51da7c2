#include "executor/mode.hpp"

#include <algorithm>
#include <boost/json/array.hpp>

namespace pysandbox::executor {

namespace {

// The facilities the namespace jail needs, in the order the probe reports them.
constexpr const char* kNamespaceNeeds[] = {
    "clone3", "pidfd",     "user_ns",       "pid_ns",      "mount_ns",   "net_ns", "ipc_ns",
    "uts_ns", "cgroup_ns", "mount_private", "bind_rec_ro", "pivot_root", "seccomp"};

constexpr const char* kHowToGetMore =
    "How to get more: 'namespaces' needs a real Linux kernel rather than gVisor -- Cloud Run "
    "gen2 (--execution-environment gen2), a GKE standard node pool rather than GKE Sandbox, or "
    "locally docker run with the README's flags (or --privileged); 'full' also needs a delegated, "
    "writable cgroup v2 with the memory, pids and cpu controllers (a VM, a privileged GKE pod, "
    "docker run --privileged --cgroupns=private, or a systemd unit with Delegate=yes).";

// "user_ns (clone(CLONE_NEWUSER): Operation not permitted), pivot_root (...)".
std::string missing(const probe::Facilities& caps) {
  std::string out;
  for (const char* need : kNamespaceNeeds) {
    const probe::Facility* c = caps.find(need);
    if (c != nullptr && c->ok) continue;
    if (!out.empty()) out += ", ";
    out += std::string(need) + " (" + (c != nullptr ? c->detail : "not probed") + ")";
  }
  return out;
}

// Why full mode's cgroup cannot be had; empty when it can. Only for probed cgroup facts.
std::string cgroup_why_not(const probe::CgroupFacts& cgroup, bool namespaces_ok) {
  if (!cgroup.v2_usable) return cgroup.v2_reason;
  if (!namespaces_ok) return "the namespace sandbox does not work here";
  if (!cgroup.delegation_error) return "not tried";
  return *cgroup.delegation_error;
}

bool has(const std::vector<std::string>& list, std::string_view item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

boost::json::array json_array(const std::vector<std::string>& items) {
  boost::json::array out;
  for (const auto& item : items) out.emplace_back(item);
  return out;
}

std::string rlimit_root_text(const RlimitFacts& f) {
  if (!has(f.namespaces, "mount")) {
    return "the host's own filesystem (no mount namespace): only file permissions protect it; "
           "the world-writable directories are shared";
  }
  std::string tmpfs;
  for (const auto& d : f.tmpfs_dirs) tmpfs += (tmpfs.empty() ? "" : ", ") + d;
  return "the host's own filesystem (rlimit mode does not pivot_root: world-readable files stay "
         "readable), with " +
         std::string(f.mount_proc ? "a fresh /proc of its own PID namespace and " : "") +
         "a private tmpfs of " + std::to_string(f.tmpfs_bytes) + " bytes over each of " + tmpfs;
}

std::string rlimit_network_text(const RlimitFacts& f) {
  if (has(f.namespaces, "network")) {
    return std::string("a network namespace of its own (loopback only, down)") +
           (f.seccomp ? "; socket() also refused by seccomp" : "");
  }
  return f.seccomp
             ? "the server's network namespace; socket() refused by seccomp (socketpair allowed)"
             : "the server's network namespace, unrestricted (no seccomp)";
}

std::string rlimit_environment_text(const RlimitFacts& f) {
  if (f.mount_proc) return "invisible to the runs (their /proc shows their own PID namespace only)";
  if (f.environment_blanked) return "blanked in memory at startup: " + *f.environment_blanked;
  return "readable by root only (/proc/<pid>/environ is ptrace-guarded)";
}

std::string rlimit_orphans_text(const RlimitFacts& f) {
  if (has(f.namespaces, "pid"))
    return "stay in the run's PID namespace, which dies with its first process";
  switch (f.orphans) {
    case OrphanReaper::kServerAsPid1:
      return "reparented to the server (pid 1), killed and reaped by it";
    case OrphanReaper::kServerAsSubreaper:
      return "reparented to the server (child subreaper), killed and reaped by it";
    case OrphanReaper::kSystemInit:
      return "reparented to the system's init: killed by the server, reaped by init";
  }
  return "";
}

std::string rlimit_scratch_text(const RlimitFacts& f) {
  if (!f.scratch_path) return "/tmp, a private tmpfs (cwd, HOME, TMPDIR)";
  return *f.scratch_path +
         "/run-<random> (cwd, HOME, TMPDIR; made by the run as its uid, mode 0700; removed after "
         "the run)";
}

}  // namespace

bool wants_namespaces(const Settings& settings) {
  return !settings.forced_isolation || *settings.forced_isolation != Isolation::kRlimit;
}

bool wants_cgroup(const Settings& settings, const NamespaceVerdict& namespaces) {
  const auto& forced = settings.forced_isolation;
  if (!forced) return true;
  return *forced == Isolation::kFull && namespaces.ok;
}

bool namespace_trial_possible(const HostFacts& facts) {
  const auto& caps = facts.facilities;
  return facts.seccomp_compiled && caps.has("clone3") && caps.has("pidfd") && caps.has("user_ns");
}

NamespaceVerdict namespace_verdict(const HostFacts& facts, const Settings& settings) {
  if (!wants_namespaces(settings)) return {};
  if (!facts.seccomp_compiled)
    return {false, "the seccomp policy does not compile here: " + facts.seccomp_error};
  // The jail would fail at its first step; the probe's lines say why.
  if (!namespace_trial_possible(facts)) return {false, "missing: " + missing(facts.facilities)};
  if (!facts.namespace_jail) return {false, "not tried"};
  if (facts.namespace_jail->ok) return {true, ""};
  return {false, facts.namespace_jail->detail + "; missing: " + missing(facts.facilities)};
}

ModeDecision decide_mode(const HostFacts& facts, const Settings& settings) {
  ModeDecision d;
  d.kill_process_available = facts.kill_process_available;
  d.sched_autogroup = facts.sched_autogroup;
  d.tmpfs_bytes = settings.tmpfs_bytes;
  d.seccomp_policy_path = settings.seccomp_policy_path;
  d.uid_base = settings.uid_base;
  d.uid_count = sandbox_uid_count(settings);
  d.namespaces = namespace_verdict(facts, settings);
  const auto& forced = settings.forced_isolation;
  const bool ns_ok = d.namespaces.ok;

  d.cgroup_info = {{"cgroup", "none"}};
  std::optional<std::string> cgroup_refusal;
  if (facts.cgroup && wants_cgroup(settings, d.namespaces)) {
    const std::string why_not = cgroup_why_not(*facts.cgroup, ns_ok);
    d.cgroup = why_not.empty();
    if (d.cgroup) {
      d.cgroup_info = facts.cgroup->delegation;
    } else {
      d.cgroup_info = {{"cgroup", "unavailable"}, {"reason", why_not}};
      if (forced)
        cgroup_refusal = "--isolation full is not available: " + why_not + ". " + kHowToGetMore;
    }
  }

  d.mode = forced     ? *forced
           : d.cgroup ? Isolation::kFull
           : ns_ok    ? Isolation::kNamespaces
                      : Isolation::kRlimit;
  for (const auto& c : facts.facilities.items) d.capabilities[c.name] = c.ok;
  d.capabilities["cgroup_v2"] = d.cgroup;

  if (forced && wants_namespaces(settings) && !ns_ok) {
    d.refusal = "--isolation " + std::string(to_string(*forced)) +
                " is not available here: " + d.namespaces.why + ". " + kHowToGetMore;
  } else if (cgroup_refusal) {
    d.refusal = std::move(cgroup_refusal);
  } else if (d.mode < settings.min_isolation) {
    std::string what;
    if (!ns_ok) what = "the namespace sandbox does not work (" + d.namespaces.why + ")";
    if (settings.min_isolation == Isolation::kFull && ns_ok) {
      const auto* reason = d.cgroup_info.if_contains("reason");
      what = "no usable cgroup v2 (" + std::string(reason ? reason->as_string() : "") + ")";
    }
    d.refusal = std::string("isolation floor '") + std::string(to_string(settings.min_isolation)) +
                "' not met: this host gives '" + std::string(to_string(d.mode)) + "': " + what +
                ". " + kHowToGetMore;
  }
  return d;
}

boost::json::object describe(const ModeDecision& d) {
  boost::json::object caps{
      {"mode", to_string(d.mode)},
      {"capabilities", d.capabilities},
      {"namespaces", boost::json::array{"user", "pid", "mount", "network", "ipc", "uts", "cgroup"}},
      {"root", "pivot_root, read-only"},
      {"tmpfs_bytes", d.tmpfs_bytes},
      {"seccomp", true},
      {"seccomp_policy", d.seccomp_policy_path},
      {"seccomp_kill_action", kill_action_text(d.kill_process_available)},
      {"pidfd", true},
      {"memory_limit", d.cgroup ? "cgroup memory.max" : "RLIMIT_AS"},
      {"cpu_share", cpu_share_text(d.cgroup, d.sched_autogroup)},
      {"rlimits", boost::json::array{"AS", "CPU", "NPROC", "NOFILE", "FSIZE", "CORE"}},
  };
  for (const auto& [key, value] : d.cgroup_info) caps[key] = value;
  caps["uids"] = {{"first", d.uid_base}, {"count", d.uid_count}};
  return caps;
}

boost::json::object describe_rlimit(const ModeDecision& d, const RlimitFacts& f) {
  boost::json::object caps{
      {"mode", "rlimit"},
      {"capabilities", d.capabilities},
      {"namespaces", json_array(f.namespaces)},
      {"root", rlimit_root_text(f)},
      {"uid", f.switch_ids
                  ? "uid-base + slot, distinct per concurrent run, no supplementary groups"
                  : "the server's own uid (the server is not root): the script can signal the "
                    "server and read what the server can read"},
      {"scratch_dir", rlimit_scratch_text(f)},
      {"shared_tmp_cleanup", f.switch_ids ? boost::json::value(json_array(f.shared_tmp_dirs))
                                          : boost::json::value(nullptr)},
      {"seccomp", f.seccomp},
      {"seccomp_policy", f.seccomp_policy_path},
      {"network", rlimit_network_text(f)},
      {"server_environment", rlimit_environment_text(f)},
      {"pidfd", false},
      {"child_wait", "SIGCHLD + waitid by pid"},
      {"orphans", rlimit_orphans_text(f)},
      {"process_cleanup", f.switch_ids ? "kill(-1) as the run's uid, then /proc checked empty"
                                       : "kill of the run's process group"},
      {"memory_limit", "RLIMIT_AS"},
      {"rlimits", json_array(f.rlimits)},
      {"cpu_share", cpu_share_text(false, d.sched_autogroup)},
      {"uids", {{"first", f.uid_base}, {"count", f.uid_count}}},
  };
  if (f.seccomp) {
    caps["seccomp_kill_action"] = kill_action_text(d.kill_process_available);
  } else {
    caps["seccomp_reason"] = f.seccomp_reason;
  }
  for (const auto& [key, value] : d.cgroup_info) caps[key] = value;
  return caps;
}

// How a sandbox's CPU is shared: its init makes it a session of its own, which the scheduler
// treats as one group where autogroup is on (CONFIG_SCHED_AUTOGROUP and
// kernel.sched_autogroup_enabled); a cgroup's cpu.max caps it in full mode.
std::string cpu_share_text(bool cgroup, bool sched_autogroup) {
  if (cgroup) return "cgroup cpu.max per sandbox";
  if (sched_autogroup)
    return "one scheduling group per sandbox (its own session; kernel autogroup)";
  return "per process: the kernel's autogroup is off (kernel.sched_autogroup_enabled), so a "
         "sandbox's share grows with its processes, up to pids-max, until its deadline";
}

std::string kill_action_text(bool kill_process_available) {
  return kill_process_available
             ? "kill_process"
             : "kill_thread (this kernel does not report SECCOMP_RET_KILL_PROCESS)";
}

}  // namespace pysandbox::executor
