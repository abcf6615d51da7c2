#include "executor/host_probe.hpp"

#include <fcntl.h>

#include <stdexcept>

#include "base/sys/unique_fd.hpp"
#include "cgroups/probe.hpp"
#include "executor/mode.hpp"
#include "executor/startup.hpp"
#include "probe/jail_trial.hpp"
#include "probe/namespaces.hpp"
#include "probe/scheduler.hpp"
#include "seccomp_policies/compiler.hpp"

namespace pysandbox::executor {

ProbedHost probe_host(const Settings& settings, const seccomp_policies::BpfProgram* bpf,
                      const std::string& seccomp_why, const jail::JailConfig& config) {
  // Each capability on its own, the way the sandboxes use it; one log line each.
  probe::NamespaceProbeOptions probe_options;
  probe_options.uid = settings.uid_base;
  probe_options.gid = settings.uid_base;
  probe_options.seccomp = bpf;
  ProbedHost out;
  probe::HostFacts& facts = out.facts;
  facts.facilities = probe::namespace_facilities(probe_options);
  facts.seccomp_compiled = bpf != nullptr;
  facts.seccomp_error = seccomp_why;
  facts.kill_process_available = seccomp_policies::kill_process_available();
  facts.sched_autogroup = probe::sched_autogroup_enabled();
  if (!bpf) facts.facilities.items.push_back({"seccomp", false, 0, seccomp_why});
  for (const auto& c : facts.facilities.items) log_capability(c.name, c.ok, c.detail, c.err);

  base::sys::UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  jail::RunParams params;
  params.host_uid = settings.uid_base;
  params.host_gid = settings.uid_base;
  params.limits.address_space = 512ull << 20;
  params.fds = jail::RunFds::all(devnull.get());

  std::optional<jail::NamespaceSpawner> probe_spawner;
  NamespaceVerdict namespaces;
  if (wants_namespaces(settings)) {
    if (namespace_trial_possible(facts)) {
      jail::JailConfig probe_config = config;
      probe_config.argv = {settings.python_path, "-I", "-B", "-c", "pass"};
      auto created = jail::NamespaceSpawner::create(probe_config);
      if (!created)
        throw std::runtime_error("invalid sandbox configuration: " + created.error().message());
      probe_spawner.emplace(std::move(*created));
      facts.namespace_jail = probe::jail_trial(*probe_spawner, params);
    }
    namespaces = namespace_verdict(facts, settings);
    log_capability("namespaces+pivot_root+seccomp", namespaces.ok, namespaces.why);
  }

  // full: a delegated cgroup v2 subtree, and a probe run born inside a leaf of it.
  std::optional<cgroups::Delegation>& delegation = out.delegation;
  if (wants_cgroup(settings, namespaces)) {
    const auto v2 = cgroups::probe_v2();
    log_capability("cgroup_v2", v2.usable, v2.reason);
    probe::CgroupFacts& cgroup = facts.cgroup.emplace();
    cgroup.v2_usable = v2.usable;
    cgroup.v2_reason = v2.reason;
    if (v2.usable && namespaces.ok) {
      auto setup = cgroups::Delegation::setup(v2);
      if (!setup) {
        cgroup.delegation_error = setup.error().message();
      } else {
        cgroups::LeafLimits limits;
        limits.memory_max_bytes = 512ull << 20;
        limits.pids_max = settings.pids_max;
        limits.cpu_max_cores = settings.cpu_max_cores;
        auto leaf = setup->create_leaf("probe", limits);
        if (!leaf) {
          cgroup.delegation_error = leaf.error().message();
        } else {
          params.cgroup_fd = leaf->dir_fd();
          const auto in_leaf = probe::jail_trial(*probe_spawner, params);
          params.cgroup_fd = -1;
          if (in_leaf.ok) {
            cgroup.delegation_error = "";
            cgroup.delegation = setup->describe();
            delegation = std::move(*setup);
          } else {
            cgroup.delegation_error = "clone3(CLONE_INTO_CGROUP): " + in_leaf.detail;
          }
        }  // the probe leaf is killed and removed here
      }
      log_capability("cgroup_delegation", delegation.has_value(),
                     delegation ? "" : *cgroup.delegation_error);
    }
  }

  return out;
}

}  // namespace pysandbox::executor
