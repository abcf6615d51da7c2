// How the kernel shares the CPU between the sandboxes when no cgroup caps them.
#pragma once

namespace pysandbox::probe {

// kernel.sched_autogroup_enabled: each sandbox's session is then one scheduling group.
bool sched_autogroup_enabled();

}  // namespace pysandbox::probe
