#include "jail/mount_plan.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <set>
#include <system_error>

#include "base/sys/syscalls.hpp"

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
    case Kind::kMountEmptyProc:
      return "mount proc of an empty PID namespace on " + target;
  }
  return "?";
}

namespace {

MountOp tmp_op(const std::string& root, const MountPlanOptions& options) {
  return {.kind = MountOp::Kind::kMountTmpfs,
          .target = root + "/tmp",
          .data = "size=" + std::to_string(options.tmpfs_bytes) + ",mode=1777",
          .flags = MS_NOSUID | MS_NODEV};
}

MountOp proc_op(const std::string& root) {
  return {.kind = MountOp::Kind::kMountProc,
          .target = root + "/proc",
          .flags = MS_NOSUID | MS_NODEV | MS_NOEXEC};
}

}  // namespace

namespace {

// Read-only for a whole bound subtree. mount_setattr(AT_RECURSIVE) covers submounts too
// (Linux >= 5.12); without it, a remount of the top mount, carrying over the flags the kernel
// locks in a user namespace (MNT_LOCK_*: they may be added, never cleared).
int make_bind_read_only(const char* target) noexcept {
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  if (::syscall(SYS_mount_setattr, AT_FDCWD, target, AT_RECURSIVE, &attr, sizeof attr) == 0)
    return 0;
  if (errno != ENOSYS) return errno;
  unsigned long have = 0;
  if (int rc = base::sys::raw_statfs_flags(target, &have); rc != 0) return -rc;
  unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV;
  if (have & ST_NOEXEC) flags |= MS_NOEXEC;
  if (have & ST_NOATIME) flags |= MS_NOATIME;
  if (have & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (have & ST_RELATIME) flags |= MS_RELATIME;
  return ::mount(nullptr, target, nullptr, flags, nullptr) == 0 ? 0 : errno;
}

// Returns 0 or an errno.
}  // namespace

int apply_mount_op(const MountOp& op) noexcept {
  using Kind = MountOp::Kind;
  switch (op.kind) {
    case Kind::kMakePrivate:
      return ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 ? 0 : errno;
    case Kind::kMountTmpfs:
      return ::mount("tmpfs", op.target.c_str(), "tmpfs", op.flags, op.data.c_str()) == 0 ? 0
                                                                                          : errno;
    case Kind::kMountProc:
      return ::mount("proc", op.target.c_str(), "proc", op.flags, nullptr) == 0 ? 0 : errno;
    case Kind::kMkdir:
      return ::mkdir(op.target.c_str(), 0755) == 0 || errno == EEXIST ? 0 : errno;
    case Kind::kTouch: {
      int fd = ::open(op.target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0444);
      if (fd < 0) return errno;
      ::close(fd);
      return 0;
    }
    case Kind::kSymlink:
      return ::symlink(op.link_target.c_str(), op.target.c_str()) == 0 ? 0 : errno;
    case Kind::kBind:
      // Recursive: in a user namespace the kernel refuses a plain bind of a tree that holds
      // mounts locked by a more privileged namespace (EINVAL, has_locked_children()).
      if (::mount(op.source.c_str(), op.target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
        return errno;
      return op.writable ? 0 : make_bind_read_only(op.target.c_str());
    case Kind::kRemountRo:
      return ::mount(nullptr, op.target.c_str(), nullptr, MS_REMOUNT | MS_RDONLY | op.flags,
                     nullptr) == 0
                 ? 0
                 : errno;
    case Kind::kMountEmptyProc: {
      // proc shows the PID namespace of the process that mounts it: a helper in a new one
      // mounts it (sharing our mount namespace) and exits, leaving that namespace empty.
      auto pid = base::sys::clone_fork(CLONE_NEWPID);
      if (!pid) return pid.error().value();
      if (*pid == 0) {
        ::_exit(::mount("proc", op.target.c_str(), "proc", op.flags, nullptr) == 0 ? 0 : errno);
      }
      auto status = base::sys::wait4_blocking(*pid);
      if (!status) return status.error().value();
      return status->signal != 0 ? ECHILD : status->code;
    }
    case Kind::kPivotRoot: {
      // pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves only
      // the new root (pivot_root(2), "new_root and put_old may be the same directory").
      if (::chdir(op.target.c_str()) != 0) return errno;
      if (int rc = base::sys::raw_pivot_root(".", "."); rc != 0) return -rc;
      if (::umount2(".", MNT_DETACH) != 0) return errno;
      return ::chdir("/") == 0 ? 0 : errno;
    }
  }
  return EINVAL;
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

namespace {

enum class PlanPart { kWhole, kRootOnly };

boost::system::result<std::vector<MountOp>> build_plan(const MountPlanOptions& options,
                                                       PlanPart part) {
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

  // Private, size-limited scratch space: the only writable place (per child when prebuilt).
  dirs.dir("/tmp");
  if (part == PlanPart::kWhole) ops.push_back(tmp_op(root, options));

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
    MountOp proc = proc_op(root);
    if (part == PlanPart::kRootOnly) proc.kind = Kind::kMountEmptyProc;
    ops.push_back(std::move(proc));
  }

  ops.push_back({.kind = Kind::kRemountRo, .target = root, .flags = MS_NOSUID | MS_NODEV});
  ops.push_back({.kind = Kind::kPivotRoot, .target = root});
  return ops;
}

}  // namespace

boost::system::result<std::vector<MountOp>> build_mount_plan(const MountPlanOptions& options) {
  if (!options.prebuilt_root) return build_plan(options, PlanPart::kWhole);
  // The zygote's child: its mount namespace is a copy of the finished root.
  std::vector<MountOp> ops{tmp_op("", options)};
  if (options.mount_proc) ops.push_back(proc_op(""));
  return ops;
}

boost::system::result<std::vector<MountOp>> build_root_plan(const MountPlanOptions& options) {
  return build_plan(options, PlanPart::kRootOnly);
}

}  // namespace pysandbox::jail
