#include "probe/namespaces.hpp"

#include <fcntl.h>
#include <linux/mount.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string>

#include "base/sys/syscalls.hpp"
#include "base/sys/unique_fd.hpp"
#include "probe/child.hpp"
#include "probe/seccomp.hpp"

namespace pysandbox::probe {

namespace {

std::string errno_text(int err) { return std::strerror(err); }

Facility make(std::string name, bool ok, int err = 0, std::string detail = {}) {
  return Facility{std::move(name), ok, err, std::move(detail)};
}

// ---- clone3 and pidfds ----------------------------------------------------------------------

Facility probe_clone3() {
  ChildOptions options;
  options.via_clone3 = true;
  const ChildRun run = run_in_child({}, options);
  if (run.fork_err != 0)
    return make("clone3", false, run.fork_err, run.fork_call + ": " + errno_text(run.fork_err));
  return make("clone3", true);
}

Facility probe_pidfd() {
  auto gate = base::sys::make_pipe();
  if (!gate) return make("pidfd", false, gate.error().value(), "pipe: " + gate.error().message());
  const int gate_read = gate->read.get();
  // The way the namespaces executor uses them: open, signal, wait through the pidfd.
  const char* step = "pidfd_open";
  int err = 0;
  const ChildRun run = run_in_child(
      [gate_read](int) {
        char c;
        ssize_t ignored = ::read(gate_read, &c, 1);  // until the parent kills us
        (void)ignored;
      },
      {},
      [&](pid_t pid) {
        base::sys::UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
        if (!pidfd) {
          err = errno;
        } else if (::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0) != 0) {
          step = "pidfd_send_signal", err = errno;
        } else {
          siginfo_t info{};
          int rc;
          while ((rc = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd.get()),
                                &info, WEXITED)) != 0 &&
                 errno == EINTR) {
          }
          if (rc == 0) return true;
          step = "waitid(P_PIDFD)", err = errno;
        }
        ::kill(pid, SIGKILL);
        return false;
      });
  if (run.fork_err != 0)
    return make("pidfd", false, run.fork_err, "fork: " + errno_text(run.fork_err));
  if (err == 0) return make("pidfd", true);
  return make("pidfd", false, err, std::string(step) + ": " + errno_text(err));
}

// ---- namespaces and mounts, in a child of its own user namespace ----------------------------

enum NsStep : int {
  kUserIds,
  kNetNs,
  kIpcNs,
  kUtsNs,
  kCgroupNs,
  kPidNs,
  kMountNs,
  kMountPrivate,
  kTmpfs,
  kBindRecRo,
  kPivotRoot,
  kChroot,
  kNsStepCount,
};

struct NsStepInfo {
  const char* facility;  // nullptr: a step other facilities depend on, not reported itself
  const char* call;
};
constexpr std::array<NsStepInfo, kNsStepCount> kNsSteps{{
    {"user_ns", "setresuid(0) in the user namespace"},
    {"net_ns", "unshare(CLONE_NEWNET)"},
    {"ipc_ns", "unshare(CLONE_NEWIPC)"},
    {"uts_ns", "unshare(CLONE_NEWUTS)"},
    {"cgroup_ns", "unshare(CLONE_NEWCGROUP)"},
    {"pid_ns", "unshare(CLONE_NEWPID) + fork as pid 1"},
    {"mount_ns", "unshare(CLONE_NEWNS)"},
    {"mount_private", "mount(/, MS_REC|MS_PRIVATE)"},
    {nullptr, "mount tmpfs"},
    {"bind_rec_ro", "bind /usr recursively + read-only"},
    {"pivot_root", "pivot_root"},
    {"chroot", "chroot"},
}};

int bind_rec_ro(const char* source, const char* target) noexcept {
  if (::mkdir(target, 0755) != 0 && errno != EEXIST) return errno;
  if (::mount(source, target, nullptr, MS_BIND | MS_REC, nullptr) != 0) return errno;
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  if (::syscall(SYS_mount_setattr, AT_FDCWD, target, AT_RECURSIVE, &attr, sizeof attr) == 0)
    return 0;
  if (errno != ENOSYS) return errno;
  return ::mount(nullptr, target, nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV,
                 nullptr) == 0
             ? 0
             : errno;
}

// Async-signal-safe: runs in the forked child.
void ns_child(int sync_read, int out) noexcept {
  char go = 0;
  if (::read(sync_read, &go, 1) != 1) ::_exit(1);
  const auto step = [out](int s, int rc) {
    report(out, s, rc);
    return rc == 0;
  };
  const auto sys_rc = [](long rc) { return rc == 0 ? 0 : errno; };

  if (!step(kUserIds, ::syscall(SYS_setgroups, 0, nullptr) != 0 ? errno
                      : ::syscall(SYS_setresgid, 0, 0, 0) != 0  ? errno
                      : ::syscall(SYS_setresuid, 0, 0, 0) != 0  ? errno
                                                                : 0))
    return;
  step(kNetNs, sys_rc(::unshare(CLONE_NEWNET)));
  step(kIpcNs, sys_rc(::unshare(CLONE_NEWIPC)));
  step(kUtsNs, sys_rc(::unshare(CLONE_NEWUTS)));
  step(kCgroupNs, sys_rc(::unshare(CLONE_NEWCGROUP)));
  if (::unshare(CLONE_NEWPID) != 0) {
    step(kPidNs, errno);
  } else {
    const long pid = ::syscall(SYS_clone, SIGCHLD, nullptr, nullptr, nullptr, 0);
    if (pid == 0) ::_exit(::getpid() == 1 ? 0 : 1);
    if (pid < 0) {
      step(kPidNs, errno);
    } else {
      int status = 0;
      while (::waitpid(static_cast<pid_t>(pid), &status, 0) < 0 && errno == EINTR) {
      }
      step(kPidNs, WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : ESRCH);
    }
  }
  if (!step(kMountNs, sys_rc(::unshare(CLONE_NEWNS)))) return;
  // A mount namespace owned by a new user namespace never propagates back to the host's (its
  // shared mounts become slaves), so the mounts below stay in here even if this step fails.
  step(kMountPrivate, sys_rc(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr)));
  if (!step(kTmpfs,
            sys_rc(::mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755"))))
    return;
  step(kBindRecRo, bind_rec_ro("/usr", "/tmp/usr"));
  if (::chdir("/tmp") != 0) return;
  int pivot = base::sys::raw_pivot_root(".", ".");
  if (pivot == 0 && ::umount2(".", MNT_DETACH) != 0) pivot = -errno;
  step(kPivotRoot, -pivot);
  step(kChroot, sys_rc(::chroot(".")));
}

void probe_namespaces(const NamespaceProbeOptions& o, Facilities& caps) {
  std::array<int, kNsStepCount> result;
  result.fill(-1);  // not reached
  int clone_err = 0;
  std::string failed_how;

  auto sync = base::sys::make_pipe();
  if (!sync) {
    clone_err = EMFILE;
    failed_how = "pipe";
  } else {
    const int sync_read = sync->read.get();
    const int sync_write = sync->write.get();
    int map_err = 0;
    ChildOptions options;
    options.clone_flags = CLONE_NEWUSER;
    const ChildRun run = run_in_child(
        [=](int out) {
          ::close(sync_write);
          ns_child(sync_read, out);
        },
        options,
        [&](pid_t child) {
          sync->read.reset();
          // As the jail does it: the privileged parent writes the maps for the child.
          const std::string base = "/proc/" + std::to_string(child);
          const std::string umap = "0 " + std::to_string(o.uid) + " 1\n";
          const std::string gmap = "0 " + std::to_string(o.gid) + " 1\n";
          for (const auto& [file, text] :
               {std::pair{base + "/uid_map", umap}, {base + "/gid_map", gmap}}) {
            base::sys::UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CLOEXEC));
            if (map_err == 0 && (!fd || ::write(fd.get(), text.data(), text.size()) !=
                                            static_cast<ssize_t>(text.size()))) {
              map_err = errno != 0 ? errno : EIO;
              failed_how = "writing " + file;
            }
          }
          if (map_err == 0) {
            const char go = 1;
            if (::write(sync->write.get(), &go, 1) != 1) map_err = errno;
          }
          sync->write.reset();  // without the go byte the child just exits
          return false;
        });
    if (run.fork_err != 0) {
      clone_err = run.fork_err;
      failed_how = run.fork_call == "pipe" ? "pipe" : "clone(CLONE_NEWUSER)";
    } else {
      for (const Record& r : run.records) {
        if (r.step >= 0 && r.step < kNsStepCount) result[static_cast<std::size_t>(r.step)] = r.err;
      }
      if (map_err != 0) clone_err = map_err;
    }
  }

  std::string blocked_by;  // the first step that failed, for the steps it kept from running
  if (clone_err != 0) {
    caps.items.push_back(
        make("user_ns", false, clone_err, failed_how + ": " + errno_text(clone_err)));
    blocked_by = "user_ns (" + failed_how + ": " + errno_text(clone_err) + ")";
  }
  for (int s = 0; s < kNsStepCount; ++s) {
    const NsStepInfo& info = kNsSteps[static_cast<std::size_t>(s)];
    const int err = result[static_cast<std::size_t>(s)];
    if (s == kUserIds && clone_err != 0) continue;
    if (err == 0) {
      if (info.facility != nullptr) caps.items.push_back(make(info.facility, true));
      continue;
    }
    if (err > 0) {
      const std::string detail = std::string(info.call) + ": " + errno_text(err);
      if (info.facility != nullptr) caps.items.push_back(make(info.facility, false, err, detail));
      // Later steps only ran if these worked.
      if (blocked_by.empty() && (s == kUserIds || s == kMountNs || s == kTmpfs))
        blocked_by = detail;
      continue;
    }
    if (info.facility != nullptr) {
      caps.items.push_back(make(info.facility, false, 0,
                                blocked_by.empty() ? "not reached" : "needs " + blocked_by));
    }
  }
}

}  // namespace

Facilities namespace_facilities(const NamespaceProbeOptions& options) {
  Facilities caps;
  caps.items.push_back(probe_clone3());
  caps.items.push_back(probe_pidfd());
  probe_namespaces(options, caps);
  if (options.seccomp != nullptr) caps.items.push_back(seccomp_holds(*options.seccomp));
  return caps;
}

}  // namespace pysandbox::probe
