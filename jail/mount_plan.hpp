// The sandbox's filesystem, as an ordered list of operations the child replays between clone and
// pivot_root. Built once at startup (lstat of host paths, string formatting) so the child only
// reads prepared memory: nothing between clone and execve allocates.
#pragma once

#include <boost/system/result.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace pysandbox::jail {

struct MountOp {
  enum class Kind {
    kMakePrivate,     // mount --make-rprivate /: our mounts must not propagate to the host
    kMountTmpfs,      // target, data (size/mode), flags
    kMountProc,       // target
    kMkdir,           // target
    kTouch,           // target (an empty file to bind a file onto)
    kSymlink,         // link_target -> target
    kBind,            // source -> target, then remount read-only unless writable
    kRemountRo,       // target (a tmpfs we mounted ourselves)
    kPivotRoot,       // target = the new root
    kMountEmptyProc,  // target: proc of a new, immediately empty PID namespace (build_root_plan)
  };
  Kind kind;
  std::string target;
  std::string source;
  std::string link_target;
  std::string data;
  unsigned long flags = 0;
  bool writable = false;  // kBind: keep read-write (device nodes)

  std::string describe() const;  // for logs: "bind /usr -> <root>/usr"
};

struct MountPlanOptions {
  std::string staging_dir = "/tmp";   // host dir the new root's tmpfs is mounted over (privately)
  std::vector<std::string> ro_paths;  // host paths exposed read-only at the same place
  std::uint64_t tmpfs_bytes = 64ull << 20;
  bool mount_proc = true;
  // The zygote's layout: the read-only root is built once, in the zygote's own mount namespace
  // (build_root_plan), and each child, whose new mount namespace is a copy of it, only mounts its
  // private /tmp and its /proc (build_mount_plan then returns just those two steps).
  bool prebuilt_root = false;
};

// The default read-only paths: the interpreter, its libraries and the few /etc files Python and
// glibc read. No /home, /root, /var, /run, /srv or other host state.
std::vector<std::string> default_ro_paths();

// Fails when a path is not absolute or not normalised; host paths that do not exist are skipped.
boost::system::result<std::vector<MountOp>> build_mount_plan(const MountPlanOptions& options);

// For prebuilt_root: what the zygote runs once, as real root in a mount namespace of its own,
// ending with pivot_root into the finished read-only root. /tmp is left an empty directory and
// /proc holds a proc instance of an empty PID namespace (kMountEmptyProc): the kernel lets a
// user namespace mount a new proc only where a fully visible proc already is
// (mount_too_revealing()), and that one shows no process at all.
boost::system::result<std::vector<MountOp>> build_root_plan(const MountPlanOptions& options);

// Runs one step in the calling process; returns 0 or an errno. Async-signal-safe except
// kMountEmptyProc, which forks a helper (never used between clone and execve).
int apply_mount_op(const MountOp& op) noexcept;

}  // namespace pysandbox::jail
