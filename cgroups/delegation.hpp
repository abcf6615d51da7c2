// The server's delegated cgroup v2 subtree, set up once at startup after probe_v2() said usable:
//
//   <own>/<base_name>/server      the server itself (moved here first)
//   <own>/<base_name>/sandboxes   memory, pids and cpu enabled; one leaf per request
//
// Why this layout: the no-internal-process rule (cgroup-v2.rst, "No Internal Process
// Constraint": a non-root cgroup can enable domain controllers for its children only while it
// has no processes of its own) means the server cannot stay in <own> or in the cgroup whose
// children get limits; so it moves into a leaf of its own, and request leaves live in a sibling
// subtree. The extra <base_name> level keeps the same shape wherever <own> is:
//  - the real root (a VM, vm-run): the root is exempt from the rule and other processes live
//    there; we only add one directory ("pysandbox") next to them and never move them;
//  - the root of a private cgroup namespace (docker/podman --cgroupns=private): not the real root,
//    so the rule applies to <own>: the server must be the only process there (PID 1);
//  - a systemd unit with Delegate=yes: <own> is the unit's cgroup, same as the container case.
// base_name "" puts server/ and sandboxes/ directly in <own> (for an <own> dedicated to us).
// Nothing above <own> is ever written: only <own>/cgroup.subtree_control (delegatable, see
// "Model of Delegation") and what we create below it.
//
// libcgroup vs direct cgroupfs I/O: leaves are created, limited and removed through libcgroup
// (cgroup_create_cgroup, cgroup_modify_cgroup, cgroup_delete_cgroup_ext) when <own> is the
// cgroup2 mount's root, since libcgroup writes every ancestor's subtree_control from the mount
// down; below a nested <own> (systemd) the same steps are done directly (describe() says which).
// Always direct: the server's move and subtree_control (no fitting libcgroup call), cgroup.kill,
// cgroup.events, memory.peak, memory.events, cpu.stat, pids.events (not in libcgroup 2.0.2).
// Not thread-safe: use a Delegation and its leaves from one thread (the event loop).
#pragma once

#include <boost/json/object.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "cgroups/error.hpp"
#include "cgroups/leaf_cgroup.hpp"
#include "cgroups/probe.hpp"

namespace pysandbox::cgroups {

namespace detail {
class Sandboxes;
}

struct DelegationOptions {
  std::string base_name = "pysandbox";
  // Bound on waiting for "populated 0" after cgroup.kill (teardown, stale-leaf cleanup).
  std::chrono::milliseconds kill_timeout{5000};
};

class Delegation {
 public:
  // Creates the layout (idempotent), moves the calling process - all its threads - into
  // <base>/server, enables memory, pids and cpu, removes leaves left by a previous server
  // (cgroup.kill, wait for "populated 0", rmdir), and picks libcgroup or direct I/O for leaves.
  // Refuses an unusable probe, and refuses if another process already sits in <base>/server
  // (another server owns this subtree: its leaves are not stale).
  static Result<Delegation> setup(const V2Probe& probe, const DelegationOptions& options = {});

  Delegation(Delegation&&) noexcept;
  Delegation& operator=(Delegation&&) noexcept;
  ~Delegation();

  // <sandboxes>/<name> with memory.max, memory.swap.max=0 (when swap accounting exists),
  // memory.oom.group=1, pids.max and cpu.max written, opened for CLONE_INTO_CGROUP. `name` is
  // [A-Za-z0-9._-]{1,128} and must be unique among live leaves.
  Result<LeafCgroup> create_leaf(std::string_view name, const LeafLimits& limits);

  // For /healthz: {"cgroup":"v2","controllers":["cpu","memory","pids"],"path":<sandboxes>,
  // "backend":"libcgroup"|"direct", ...}.
  boost::json::object describe() const;

  const std::string& server_path() const noexcept { return server_path_; }
  const std::string& sandboxes_path() const noexcept { return sandboxes_path_; }

 private:
  Delegation() = default;

  std::shared_ptr<detail::Sandboxes> sandboxes_;
  std::string server_path_;
  std::string sandboxes_path_;
  std::size_t stale_removed_ = 0;
};

// For /healthz when there is no Delegation: {"cgroup":"unavailable","reason":...}.
boost::json::object describe(const V2Probe& probe);

}  // namespace pysandbox::cgroups
