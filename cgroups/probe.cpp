#include "cgroups/probe.hpp"

#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string_view>

#include "cgroups/cgroupfs.hpp"

namespace pysandbox::cgroups {

namespace {

constexpr std::array<std::string_view, 3> kRequiredControllers = {"memory", "pids", "cpu"};

constexpr std::string_view kDelegationAdvice =
    "run in a container with --cgroupns=private and a writable cgroup2 mount (e.g. docker/podman "
    "--privileged --cgroupns=private), as a systemd unit with Delegate=yes, or on a VM/host "
    "booted with the unified hierarchy (systemd.unified_cgroup_hierarchy=1)";

struct MountEntry {
  std::string root;         // path of the mount's root inside the cgroup2 hierarchy
  std::string mount_point;  // where it is mounted
  std::string mount_options;
  std::string super_options;
};

// mountinfo escapes space, tab, newline and backslash as \ooo (octal).
std::string unescape_mountinfo(std::string_view field) {
  std::string out;
  out.reserve(field.size());
  const auto is_octal = [](char c) { return c >= '0' && c <= '7'; };
  for (std::size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size() && is_octal(field[i + 1]) &&
        is_octal(field[i + 2]) && is_octal(field[i + 3])) {
      out.push_back(static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 +
                                      (field[i + 3] - '0')));
      i += 3;
      continue;
    }
    out.push_back(field[i]);
  }
  return out;
}

// Lines of "id parent major:minor root mount_point options [optional...] - fstype source super".
std::vector<MountEntry> parse_cgroup2_mounts(std::string_view text) {
  std::vector<MountEntry> mounts;
  while (!text.empty()) {
    const std::size_t eol = text.find('\n');
    const std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    const std::vector<std::string> fields = fs::split_words(line);
    std::size_t dash = 0;
    for (std::size_t i = 6; i < fields.size(); ++i) {
      if (fields[i] == "-") {
        dash = i;
        break;
      }
    }
    if (dash == 0 || dash + 1 >= fields.size() || fields[dash + 1] != "cgroup2") continue;
    mounts.push_back(MountEntry{unescape_mountinfo(fields[3]), unescape_mountinfo(fields[4]),
                                fields[5], dash + 3 < fields.size() ? fields[dash + 3] : ""});
  }
  return mounts;
}

bool has_option(std::string_view options, std::string_view option) {
  while (!options.empty()) {
    const std::size_t comma = options.find(',');
    if (options.substr(0, comma) == option) return true;
    if (comma == std::string_view::npos) break;
    options.remove_prefix(comma + 1);
  }
  return false;
}

// `path` equals `prefix` or lies below it ("/a" covers "/a/b", not "/ab").
std::optional<std::string_view> strip_cgroup_prefix(std::string_view path,
                                                    std::string_view prefix) {
  if (prefix == "/") return path;
  if (path.substr(0, prefix.size()) != prefix) return std::nullopt;
  if (path.size() == prefix.size()) return std::string_view("/");
  if (path[prefix.size()] != '/') return std::nullopt;
  return path.substr(prefix.size());
}

V2Probe unusable(V2Probe probe, std::string reason) {
  probe.usable = false;
  probe.reason = "cgroup v2 unusable: " + std::move(reason);
  return probe;
}

// "4:memory:/x" style lines (cgroup v1 hierarchies) that name `controller`.
std::optional<std::string> v1_line_for(std::string_view cgroup_file, std::string_view controller) {
  while (!cgroup_file.empty()) {
    const std::size_t eol = cgroup_file.find('\n');
    const std::string_view line = cgroup_file.substr(0, eol);
    cgroup_file = eol == std::string_view::npos ? std::string_view() : cgroup_file.substr(eol + 1);
    const std::size_t c1 = line.find(':');
    const std::size_t c2 = c1 == std::string_view::npos ? c1 : line.find(':', c1 + 1);
    if (c2 == std::string_view::npos) continue;
    std::string_view list = line.substr(c1 + 1, c2 - c1 - 1);
    while (!list.empty()) {
      const std::size_t comma = list.find(',');
      if (list.substr(0, comma) == controller) return std::string(line);
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
  return std::nullopt;
}

// Each step below fills its part of the probe, or says why cgroup v2 cannot be used here.
using Unusable = std::optional<std::string>;

// 1. Our cgroup in the unified hierarchy: the "0::<path>" line (cgroup-v2.rst, "Processes":
//    /proc/$PID/cgroup lists "0::$PATH" for cgroup v2). The path is relative to our cgroup
//    namespace's root.
Unusable find_own_cgroup(const ProbeOptions& options, std::string_view cgroup_file,
                         V2Probe& probe) {
  bool found = false;
  while (!cgroup_file.empty() && !found) {
    const std::size_t eol = cgroup_file.find('\n');
    const std::string_view line = cgroup_file.substr(0, eol);
    cgroup_file = eol == std::string_view::npos ? std::string_view() : cgroup_file.substr(eol + 1);
    if (line.substr(0, 3) == "0::") {
      probe.own_path = std::string(line.substr(3));
      found = true;
    }
  }
  if (!found) {
    return options.proc_self_cgroup +
           " has no unified-hierarchy (\"0::\") line: the kernel runs cgroup v1 only; " +
           std::string(kDelegationAdvice);
  }
  if (probe.own_path.empty() || probe.own_path.front() != '/' ||
      probe.own_path.find("/..") != std::string::npos) {
    return "own cgroup \"" + probe.own_path + "\" (from " + options.proc_self_cgroup +
           ") lies outside this process's cgroup namespace; run the server in its own cgroup "
           "namespace (--cgroupns=private)";
  }
  return std::nullopt;
}

// 2. The cgroup2 mount that shows our cgroup. Its mountinfo "root" is the hierarchy path it
//    exposes; our directory is mount_point + (own_path relative to that root).
Unusable find_own_directory(const ProbeOptions& options, V2Probe& probe, MountEntry& chosen) {
  auto mountinfo = fs::read_file(options.proc_self_mountinfo);
  if (!mountinfo) return mountinfo.error().message();
  const std::vector<MountEntry> mounts = parse_cgroup2_mounts(*mountinfo);
  if (mounts.empty()) {
    return "no cgroup2 filesystem is mounted (" + options.proc_self_mountinfo +
           "); mount one (mount -t cgroup2 none /sys/fs/cgroup) or " +
           std::string(kDelegationAdvice);
  }
  const MountEntry* best = nullptr;
  std::string relative;
  for (const MountEntry& m : mounts) {
    const auto rel = strip_cgroup_prefix(probe.own_path, m.root);
    if (!rel) continue;
    // Prefer the conventional mount point when the hierarchy is mounted more than once.
    if (best == nullptr || m.mount_point == "/sys/fs/cgroup") {
      best = &m;
      relative = std::string(*rel);
    }
  }
  if (best == nullptr) {
    return "own cgroup " + probe.own_path +
           " is not visible under any cgroup2 mount (first: root " + mounts.front().root + " at " +
           mounts.front().mount_point +
           "): the mount and the cgroup namespace disagree; run with --cgroupns=private and "
           "mount cgroup2 inside that namespace";
  }
  chosen = *best;
  probe.mount_point =
      options.mount_point_override.empty() ? chosen.mount_point : options.mount_point_override;
  probe.own_dir = relative == "/" ? probe.mount_point : fs::join(probe.mount_point, relative);
  return std::nullopt;
}

// The mount point really is cgroup2 (unless a test points it elsewhere) and our directory exists.
Unusable check_filesystem(const ProbeOptions& options, const V2Probe& probe) {
  if (options.mount_point_override.empty()) {
    struct statfs sfs {};
    if (::statfs(probe.mount_point.c_str(), &sfs) != 0) {
      return errno_error(errno, "statfs", probe.mount_point).message();
    }
    if (static_cast<unsigned long>(sfs.f_type) != CGROUP2_SUPER_MAGIC) {
      char hex[32];
      std::snprintf(hex, sizeof hex, "0x%lx", static_cast<unsigned long>(sfs.f_type));
      return probe.mount_point + " is not a cgroup2 filesystem (statfs f_type " + hex + ")";
    }
  }
  struct stat st {};
  if (::stat(probe.own_dir.c_str(), &st) != 0) {
    return errno_error(errno, "stat", probe.own_dir).message() + " (own cgroup " + probe.own_path +
           ")";
  }
  return std::nullopt;
}

// 3. A threaded cgroup cannot host the memory controller (cgroup-v2.rst, "Threads").
Unusable check_domain_cgroup(const V2Probe& probe) {
  if (auto type = fs::read_file(fs::join(probe.own_dir, "cgroup.type"))) {
    if (fs::has_word(*type, "threaded")) {
      return probe.own_dir + "/cgroup.type is \"threaded\": memory and pids need a domain cgroup";
    }
  }  // absent in the root cgroup: fine
  return std::nullopt;
}

// 4. Controllers available to us: cgroup.controllers lists what the parent enabled in its
//    cgroup.subtree_control (top-down constraint), i.e. what our children can get.
Unusable check_controllers(const ProbeOptions& options, std::string_view cgroup_file,
                           V2Probe& probe) {
  const std::string controllers_file = fs::join(probe.own_dir, "cgroup.controllers");
  auto controllers = fs::read_file(controllers_file);
  if (!controllers) return controllers.error().message();
  probe.controllers = fs::split_words(*controllers);
  std::string missing;
  for (std::string_view c : kRequiredControllers) {
    if (!fs::has_word(*controllers, c)) missing.append(missing.empty() ? "" : ", ").append(c);
  }
  if (missing.empty()) return std::nullopt;
  std::string listed = probe.controllers.empty() ? "nothing" : "";
  for (const auto& c : probe.controllers) listed.append(listed.empty() ? "" : " ").append(c);
  std::string reason = controllers_file + " lists " + listed + "; missing: " + missing + ". ";
  if (auto v1 = v1_line_for(cgroup_file, "memory")) {
    return reason + "memory is bound to a cgroup v1 hierarchy (" + options.proc_self_cgroup +
           ": \"" + *v1 +
           "\"): a v1/v2 hybrid host cannot delegate it; boot with "
           "systemd.unified_cgroup_hierarchy=1 (or cgroup_no_v1=all) or run in a VM";
  }
  return reason + "the parent cgroup must enable them in its cgroup.subtree_control; " +
         std::string(kDelegationAdvice);
}

// 5. Writable: a read-only mount (docker's default for /sys/fs/cgroup), or directory and
//    delegation files not writable by us (cgroup-v2.rst, "Model of Delegation": the delegatee
//    needs write access to the directory, cgroup.procs, cgroup.subtree_control).
Unusable check_writable(const V2Probe& probe, const MountEntry& mount) {
  if (has_option(mount.mount_options, "ro") || has_option(mount.super_options, "ro")) {
    return mount.mount_point + " is mounted read-only (mountinfo options " + mount.mount_options +
           "); " + std::string(kDelegationAdvice);
  }
  for (const std::string& path : {probe.own_dir, fs::join(probe.own_dir, "cgroup.procs"),
                                  fs::join(probe.own_dir, "cgroup.subtree_control")}) {
    if (::access(path.c_str(), W_OK) != 0) {
      return errno_error(errno, "access(W_OK)", path).message() + " (uid " +
             std::to_string(::geteuid()) + "): the own cgroup is not delegated to this user; " +
             std::string(kDelegationAdvice);
    }
  }
  return std::nullopt;
}

}  // namespace

V2Probe probe_v2(const ProbeOptions& options) {
  V2Probe probe;
  auto cgroup_file = fs::read_file(options.proc_self_cgroup);
  if (!cgroup_file) return unusable(probe, cgroup_file.error().message());
  MountEntry mount;
  if (auto why = find_own_cgroup(options, *cgroup_file, probe)) return unusable(probe, *why);
  if (auto why = find_own_directory(options, probe, mount)) return unusable(probe, *why);
  if (auto why = check_filesystem(options, probe)) return unusable(probe, *why);
  if (auto why = check_domain_cgroup(probe)) return unusable(probe, *why);
  if (auto why = check_controllers(options, *cgroup_file, probe)) return unusable(probe, *why);
  if (auto why = check_writable(probe, mount)) return unusable(probe, *why);
  probe.usable = true;
  return probe;
}

}  // namespace pysandbox::cgroups
