#include "jail/mount_plan.hpp"

#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <set>
#include <system_error>

namespace pysandbox::jail {

namespace {

std::string ancestor(const std::string& path, std::size_t end) { return path.substr(0, end); }

bool normalised_absolute(const std::string& p) {
  if (p.empty() || p[0] != '/' || p == "/") return false;
  if (p.back() == '/') return false;
  return p.find("//") == std::string::npos && p.find("/./") == std::string::npos &&
         p.find("/../") == std::string::npos && !p.ends_with("/..") && !p.ends_with("/.");
}

// Directories inside the new root created so far, so each is made once, parents first.
class DirMaker {
 public:
  DirMaker(std::vector<MountOp>& ops, std::string root) : ops_(ops), root_(std::move(root)) {}
  void parents_of(const std::string& path) {
    for (std::size_t pos = path.find('/', 1); pos != std::string::npos;
         pos = path.find('/', pos + 1)) {
      dir(ancestor(path, pos));
    }
  }
  void dir(const std::string& path) {
    if (made_.insert(path).second)
      ops_.push_back({.kind = MountOp::Kind::kMkdir, .target = root_ + path});
  }

 private:
  std::vector<MountOp>& ops_;
  std::string root_;
  std::set<std::string> made_;
};

}  // namespace

std::string MountOp::describe() const {
  switch (kind) {
    case Kind::kMakePrivate:
      return "make / rprivate";
    case Kind::kMountTmpfs:
      return "mount tmpfs on " + target + " (" + data + ")";
    case Kind::kMountProc:
      return "mount proc on " + target;
    case Kind::kMkdir:
      return "mkdir " + target;
    case Kind::kTouch:
      return "create " + target;
    case Kind::kSymlink:
      return "symlink " + target + " -> " + link_target;
    case Kind::kBind:
      return "bind " + source + " -> " + target + (writable ? "" : " (ro)");
    case Kind::kRemountRo:
      return "remount read-only " + target;
    case Kind::kPivotRoot:
      return "pivot_root to " + target;
  }
  return "?";
}

std::vector<std::string> default_ro_paths() {
  return {
      "/usr",
      "/bin",
      "/sbin",
      "/lib",
      "/lib64",
      "/lib32",
      "/libx32",
      // Dynamic loader cache and config, time zone, Python's Debian configuration.
      "/etc/ld.so.cache",
      "/etc/ld.so.conf",
      "/etc/ld.so.conf.d",
      "/etc/localtime",
      "/etc/timezone",
      "/etc/python3",
      "/etc/python3.11",
      "/etc/mime.types",
      "/etc/nsswitch.conf",
      // Debian resolves libblas/liblapack through alternatives symlinks.
      "/etc/alternatives",
  };
}

boost::system::result<std::vector<MountOp>> build_mount_plan(const MountPlanOptions& options) {
  using Kind = MountOp::Kind;
  const auto invalid = std::make_error_code(std::errc::invalid_argument);
  if (!normalised_absolute(options.staging_dir)) return invalid;
  const std::string& root = options.staging_dir;

  std::vector<MountOp> ops;
  ops.push_back({.kind = Kind::kMakePrivate});
  // The root skeleton: only mount points and symlinks live here, and it goes read-only below.
  ops.push_back({.kind = Kind::kMountTmpfs,
                 .target = root,
                 .data = "size=1m,nr_inodes=4096,mode=0755",
                 .flags = MS_NOSUID | MS_NODEV});
  DirMaker dirs(ops, root);

  std::set<std::string> seen;
  for (const auto& path : options.ro_paths) {
    if (!normalised_absolute(path)) return invalid;
    if (!seen.insert(path).second) continue;
    if (path == "/tmp" || path == "/dev" || path == "/proc" || path.starts_with("/tmp/") ||
        path.starts_with("/dev/") || path.starts_with("/proc/"))
      return invalid;  // these are the sandbox's own
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) continue;
      return boost::system::error_code(errno, boost::system::generic_category());
    }
    dirs.parents_of(path);
    if (S_ISLNK(st.st_mode)) {
      std::string target(static_cast<std::size_t>(st.st_size) + 1, '\0');
      ssize_t n = ::readlink(path.c_str(), target.data(), target.size());
      if (n < 0) return boost::system::error_code(errno, boost::system::generic_category());
      target.resize(static_cast<std::size_t>(n));
      ops.push_back({.kind = Kind::kSymlink, .target = root + path, .link_target = target});
    } else if (S_ISDIR(st.st_mode)) {
      dirs.dir(path);
      ops.push_back({.kind = Kind::kBind, .target = root + path, .source = path});
    } else if (S_ISREG(st.st_mode)) {
      ops.push_back({.kind = Kind::kTouch, .target = root + path});
      ops.push_back({.kind = Kind::kBind, .target = root + path, .source = path});
    }
  }

  // Private, size-limited scratch space: the only writable place.
  dirs.dir("/tmp");
  ops.push_back({.kind = Kind::kMountTmpfs,
                 .target = root + "/tmp",
                 .data = "size=" + std::to_string(options.tmpfs_bytes) + ",mode=1777",
                 .flags = MS_NOSUID | MS_NODEV});

  // Minimal /dev: binds of the four harmless character devices (mknod is impossible in a user
  // namespace, and a bind keeps the host mount's dev permission).
  dirs.dir("/dev");
  ops.push_back({.kind = Kind::kMountTmpfs,
                 .target = root + "/dev",
                 .data = "size=64k,nr_inodes=64,mode=0755",
                 .flags = MS_NOSUID | MS_NOEXEC});
  for (const char* dev : {"null", "zero", "random", "urandom"}) {
    const std::string host = std::string("/dev/") + dev;
    ops.push_back({.kind = Kind::kTouch, .target = root + host});
    ops.push_back({.kind = Kind::kBind, .target = root + host, .source = host, .writable = true});
  }
  for (const auto& [name, link] : {std::pair{"fd", "/proc/self/fd"},
                                   {"stdin", "/proc/self/fd/0"},
                                   {"stdout", "/proc/self/fd/1"},
                                   {"stderr", "/proc/self/fd/2"},
                                   // POSIX semaphores (multiprocessing) live in /dev/shm: share
                                   // the private, size-limited /tmp.
                                   {"shm", "/tmp"}}) {
    ops.push_back({.kind = Kind::kSymlink, .target = root + "/dev/" + name, .link_target = link});
  }
  ops.push_back(
      {.kind = Kind::kRemountRo, .target = root + "/dev", .flags = MS_NOSUID | MS_NOEXEC});

  if (options.mount_proc) {
    // A fresh proc for the new PID namespace: only the sandbox's own processes are visible.
    dirs.dir("/proc");
    ops.push_back({.kind = Kind::kMountProc,
                   .target = root + "/proc",
                   .flags = MS_NOSUID | MS_NODEV | MS_NOEXEC});
  }

  ops.push_back({.kind = Kind::kRemountRo, .target = root, .flags = MS_NOSUID | MS_NODEV});
  ops.push_back({.kind = Kind::kPivotRoot, .target = root});
  return ops;
}

}  // namespace pysandbox::jail
