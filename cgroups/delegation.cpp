#include "cgroups/delegation.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <boost/json/array.hpp>
#include <cerrno>
#include <tuple>
#include <utility>
#include <vector>

#include "base/sys/unique_fd.hpp"
#include "cgroups/cgroupfs.hpp"
#include "cgroups/libcgroup_backend.hpp"
#include "cgroups/sandboxes.hpp"

namespace pysandbox::cgroups {

namespace {

using base::sys::UniqueFd;

constexpr std::array<const char*, 3> kControllers = {"memory", "pids", "cpu"};
constexpr std::size_t kMaxNameLength = 128;

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength || name == "." || name == "..") return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Result<UniqueFd> make_and_open(int parent_fd, const std::string& parent_path,
                               const std::string& name) {
  if (::mkdirat(parent_fd, name.c_str(), 0755) != 0 && errno != EEXIST) {
    return errno_error(errno, "mkdir", fs::join(parent_path, name));
  }
  return fs::open_dir_at(parent_fd, parent_path, name);
}

// "pid 1 (tini), pid 9 (sh)" for the processes in a cgroup other than `except`.
std::string list_processes(int dir_fd, const std::string& dir_path, pid_t except) {
  auto procs = fs::read_file_at(dir_fd, dir_path, "cgroup.procs");
  if (!procs) return procs.error().message();
  std::string out;
  for (const std::string& pid : fs::split_words(*procs)) {
    if (pid == std::to_string(except)) continue;
    std::string comm = "?";
    if (auto text = fs::read_file("/proc/" + pid + "/comm")) {
      comm = *text;
      while (!comm.empty() && comm.back() == '\n') comm.pop_back();
    }
    out.append(out.empty() ? "" : ", ").append("pid ").append(pid).append(" (" + comm + ")");
  }
  return out;
}

// Adds memory, pids and cpu to <dir>/cgroup.subtree_control (only those missing: no write at
// all when they are on, as in the root cgroup of vm-run).
Result<void> enable_controllers(int dir_fd, const std::string& dir_path) {
  auto current = fs::read_file_at(dir_fd, dir_path, "cgroup.subtree_control");
  if (!current) return current.error();
  std::string request;
  for (const char* c : kControllers) {
    if (!fs::has_word(*current, c)) request.append(request.empty() ? "+" : " +").append(c);
  }
  if (request.empty()) return {};
  auto written = fs::write_file_at(dir_fd, dir_path, "cgroup.subtree_control", request);
  if (written || written.error().code() != EBUSY) return written;
  return Error(EBUSY,
               written.error().message() + " (\"" + request + "\"): " + dir_path +
                   " still holds processes [" + list_processes(dir_fd, dir_path, 0) +
                   "]; the no-internal-process rule forbids enabling controllers for the "
                   "children of a non-root cgroup that has processes: run pysandboxd as the only "
                   "process of its cgroup (container PID 1 without an init wrapper, or a systemd "
                   "unit with Delegate=yes)");
}

// libcgroup for leaves only where its writes stay inside <own>; otherwise say why not.
std::pair<detail::Backend, std::string> choose_backend(const V2Probe& probe) {
  if (probe.own_dir != probe.mount_point) {
    // Observed with strace in vm-run: for every controller of the cgroup it creates,
    // cgroup_create_cgroup() (libcgroup 2.0.2) mkdir -p's the path and writes "+<controller>"
    // into the cgroup.subtree_control of each ancestor from the first level below the mount
    // down to the new cgroup's parent. Below a non-root <own> that would write above <own>.
    return {detail::Backend::kDirect,
            "libcgroup's cgroup_create_cgroup writes cgroup.subtree_control of every ancestor "
            "below " +
                probe.mount_point + ", which includes cgroups above " + probe.own_dir +
                "; leaves use direct cgroupfs I/O"};
  }
  if (auto init = detail::libcgroup_init(); !init) {
    return {detail::Backend::kDirect, init.error().message() + "; leaves use direct cgroupfs I/O"};
  }
  // On a v1/v2 hybrid host cgroup_init succeeds and maps memory/pids/cpu to the v1 hierarchies
  // (see README.md, "Isolation modes"); only trust libcgroup when its table agrees with what we
  // probed.
  for (const char* c : kControllers) {
    auto mount = detail::libcgroup_mount_point(c);
    if (!mount || *mount != probe.mount_point) {
      return {detail::Backend::kDirect, std::string("libcgroup maps ") + c + " to " +
                                            (mount ? *mount : mount.error().message()) +
                                            ", not the cgroup2 mount " + probe.mount_point +
                                            "; leaves use direct cgroupfs I/O"};
    }
  }
  return {detail::Backend::kLibcgroup, ""};
}

}  // namespace

Delegation::Delegation(Delegation&&) noexcept = default;
Delegation& Delegation::operator=(Delegation&&) noexcept = default;
Delegation::~Delegation() = default;

Result<Delegation> Delegation::setup(const V2Probe& probe, const DelegationOptions& options) {
  if (!probe.usable) return Error(ENOTSUP, "cgroup delegation refused: " + probe.reason);
  if (!options.base_name.empty() && !valid_name(options.base_name)) {
    return Error(EINVAL, "invalid cgroup base name \"" + options.base_name + "\"");
  }
  const std::string& own = probe.own_dir;
  auto own_fd = fs::open_dir(own);
  if (!own_fd) return own_fd.error();

  const std::string base = options.base_name.empty() ? own : fs::join(own, options.base_name);
  auto base_fd = options.base_name.empty() ? fs::open_dir(own)
                                           : make_and_open(own_fd->get(), own, options.base_name);
  if (!base_fd) return base_fd.error();

  // 1. The server leaf, and the server into it. Writing a PID to cgroup.procs migrates the whole
  //    process, all threads included (cgroup-v2.rst, "Processes"). Migration needs write access
  //    to cgroup.procs of the common ancestor, here <own> (delegation containment), which the
  //    probe checked. This must come before step 2: a non-root <own> that still has processes
  //    cannot enable controllers for its children.
  //    Direct write, not cgroup_attach_task_pid(): libcgroup 2.0.2 refuses to attach to a v2
  //    cgroup unless each of its controllers is already on in the parent's subtree_control
  //    (cgroupv2_controller_enabled), which this ordering forbids, and with no controllers it
  //    returns success without writing anything.
  const std::string server = fs::join(base, "server");
  auto server_fd = make_and_open(base_fd->get(), base, "server");
  if (!server_fd) return server_fd.error();
  const pid_t self = ::getpid();
  if (std::string others = list_processes(server_fd->get(), server, self); !others.empty()) {
    return Error(EBUSY, server + " already holds other processes [" + others +
                            "]: another pysandboxd owns this subtree (its leaves are not stale); "
                            "give this instance another cgroup base name");
  }
  if (auto moved =
          fs::write_file_at(server_fd->get(), server, "cgroup.procs", std::to_string(self));
      !moved) {
    return moved.error();
  }

  // 2. Controllers down to sandboxes/: each level's subtree_control feeds the next level's
  //    cgroup.controllers (top-down constraint). <own> and <base> now hold no processes.
  //    Direct writes: libcgroup has no call for this; it only enables controllers as a side
  //    effect of cgroup_create_cgroup, walking down from the mount (above <own> when nested).
  if (auto enabled = enable_controllers(own_fd->get(), own); !enabled) return enabled.error();
  if (base != own) {
    if (auto enabled = enable_controllers(base_fd->get(), base); !enabled) return enabled.error();
  }
  const std::string sandboxes = fs::join(base, "sandboxes");
  auto sandboxes_fd = make_and_open(base_fd->get(), base, "sandboxes");
  if (!sandboxes_fd) return sandboxes_fd.error();
  if (auto enabled = enable_controllers(sandboxes_fd->get(), sandboxes); !enabled) {
    return enabled.error();
  }

  detail::SandboxesConfig config;
  config.mount_point = probe.mount_point;
  config.dir = sandboxes;
  // Swap accounting can be compiled out or disabled (swapaccount=0): then memory.swap.max is
  // absent and the leaf is limited by memory.max alone (swap use is not charged at all).
  config.swap_max = fs::exists_at(sandboxes_fd->get(), "memory.swap.max");
  config.memory_peak = fs::exists_at(sandboxes_fd->get(), "memory.peak");
  config.kill_timeout = options.kill_timeout;
  std::tie(config.backend, config.backend_note) = choose_backend(probe);
  if (config.backend == detail::Backend::kDirect) log_warning(config.backend_note);

  Delegation delegation;
  delegation.server_path_ = server;
  delegation.sandboxes_path_ = sandboxes;
  delegation.sandboxes_ =
      std::make_shared<detail::Sandboxes>(std::move(config), std::move(*sandboxes_fd));

  // 3. Leaves left by a server that died without teardown: only we create entries here, and no
  //    other server is alive in server/ (checked above), so every entry is stale.
  auto stale = fs::list_subdirs(delegation.sandboxes_->dir_fd(), sandboxes);
  if (!stale) return stale.error();
  for (const std::string& name : *stale) {
    if (delegation.sandboxes_->destroy_or_adopt(name, -1, options.kill_timeout)) {
      ++delegation.stale_removed_;
    }
  }
  return delegation;
}

Result<LeafCgroup> Delegation::create_leaf(std::string_view name, const LeafLimits& limits) {
  if (!valid_name(name)) {
    return Error(EINVAL, "invalid leaf name \"" + std::string(name) +
                             "\" (want [A-Za-z0-9._-], 1 to 128 characters)");
  }
  if (!sandboxes_) return Error(EBADF, "create_leaf on a moved-from Delegation");
  sandboxes_->reap();  // leaves whose teardown failed earlier: retry, without waiting
  const auto& config = sandboxes_->config();
  std::vector<detail::ControlValue> values;
  values.push_back(
      {"memory", "memory.max",
       limits.memory_max_bytes == 0 ? "max" : std::to_string(limits.memory_max_bytes)});
  if (config.swap_max) values.push_back({"memory", "memory.swap.max", "0"});
  // The OOM killer takes the whole leaf, not one process of it (cgroup-v2.rst, memory.oom.group).
  values.push_back({"memory", "memory.oom.group", "1"});
  values.push_back(
      {"pids", "pids.max", limits.pids_max == 0 ? "max" : std::to_string(limits.pids_max)});
  values.push_back(
      {"cpu", "cpu.max", format_cpu_max(limits.cpu_max_cores, limits.cpu_period_usec)});

  std::string leaf_name(name);
  auto fd = sandboxes_->create(leaf_name, values);
  if (!fd) return fd.error();
  return LeafCgroup(sandboxes_, std::move(leaf_name), std::move(*fd));
}

boost::json::object Delegation::describe() const {
  boost::json::object out;
  if (!sandboxes_) {
    out["cgroup"] = "unavailable";
    out["reason"] = "moved-from Delegation";
    return out;
  }
  const auto& config = sandboxes_->config();
  out["cgroup"] = "v2";
  out["controllers"] = boost::json::array{"cpu", "memory", "pids"};
  out["path"] = sandboxes_path_;
  out["server"] = server_path_;
  out["backend"] = config.backend == detail::Backend::kLibcgroup ? "libcgroup" : "direct";
  if (!config.backend_note.empty()) out["backend_note"] = config.backend_note;
  out["swap_limit"] = config.swap_max;
  out["memory_peak"] = config.memory_peak;
  out["stale_removed"] = stale_removed_;
  out["stale_pending"] = sandboxes_->pending();
  return out;
}

boost::json::object describe(const V2Probe& probe) {
  boost::json::object out;
  out["cgroup"] = "unavailable";
  out["reason"] =
      probe.usable ? "cgroup v2 is usable but the subtree was not delegated" : probe.reason;
  return out;
}

}  // namespace pysandbox::cgroups
