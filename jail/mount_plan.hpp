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
    kMakePrivate,  // mount --make-rprivate /: our mounts must not propagate to the host
    kMountTmpfs,   // target, data (size/mode), flags
    kMountProc,    // target
    kMkdir,        // target
    kTouch,        // target (an empty file to bind a file onto)
    kSymlink,      // link_target -> target
    kBind,         // source -> target, then remount read-only unless writable
    kRemountRo,    // target (a tmpfs we mounted ourselves)
    kPivotRoot,    // target = the new root
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
};

// The default read-only paths: the interpreter, its libraries and the few /etc files Python and
// glibc read. No /home, /root, /var, /run, /srv or other host state.
std::vector<std::string> default_ro_paths();

// Fails when a path is not absolute or not normalised; host paths that do not exist are skipped.
boost::system::result<std::vector<MountOp>> build_mount_plan(const MountPlanOptions& options);

}  // namespace pysandbox::jail
