#include "jail/capabilities.hpp"

#include <fcntl.h>
#include <linux/sched.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <string>

#include "jail/sys/syscalls.hpp"
#include "seccomp_policies/bpf_program.hpp"

namespace pysandbox::jail {

namespace {

// What a probe child reports: (step, errno) records on a pipe, one per step it got to.
struct Record {
  std::int32_t step = 0;
  std::int32_t err = 0;
};

void report(int fd, int step, int err) noexcept {
  const Record r{step, err};
  ssize_t ignored = ::write(fd, &r, sizeof r);
  (void)ignored;
}

class BlockAllSignals {
 public:
  BlockAllSignals() noexcept {
    sigset_t all;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &saved_);
  }
  ~BlockAllSignals() { ::pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }

 private:
  sigset_t saved_{};
};

// Reads every record until the child closes the pipe (it exited), then reaps it.
std::vector<Record> collect(int read_fd, pid_t pid) {
  std::vector<Record> out;
  Record r;
  std::size_t got = 0;
  for (;;) {
    const ssize_t n = ::read(read_fd, reinterpret_cast<char*>(&r) + got, sizeof r - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
    if (got == sizeof r) {
      out.push_back(r);
      got = 0;
    }
  }
  (void)sys::wait4_blocking(pid);
  return out;
}

std::string errno_text(int err) { return std::strerror(err); }

Capability make(std::string name, bool ok, int err = 0, std::string detail = {}) {
  return Capability{std::move(name), ok, err, std::move(detail)};
}

// ---- clone3 and pidfds ----------------------------------------------------------------------

Capability probe_clone3() {
  clone_args args{};
  args.exit_signal = SIGCHLD;
  long pid;
  {
    BlockAllSignals blocked;
    pid = ::syscall(SYS_clone3, &args, sizeof args);
    if (pid == 0) ::_exit(0);
  }
  if (pid < 0) {
    const int err = errno;
    return make("clone3", false, err, "clone3: " + errno_text(err));
  }
  (void)sys::wait4_blocking(static_cast<pid_t>(pid));
  return make("clone3", true);
}

Capability probe_pidfd() {
  auto gate = sys::make_pipe();
  if (!gate) return make("pidfd", false, gate.error().value(), "pipe: " + gate.error().message());
  boost::system::result<pid_t> child = boost::system::error_code{};
  {
    BlockAllSignals blocked;
    child = sys::clone_fork();
    if (child && *child == 0) {
      char c;
      ssize_t ignored = ::read(gate->read.get(), &c, 1);  // until the parent kills us
      (void)ignored;
      ::_exit(0);
    }
  }
  if (!child)
    return make("pidfd", false, child.error().value(), "fork: " + child.error().message());
  const pid_t pid = *child;
  // The way the namespaces executor uses them: open, signal, wait through the pidfd.
  const char* step = "pidfd_open";
  int err = 0;
  sys::UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd) {
    err = errno;
  } else if (::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0) != 0) {
    step = "pidfd_send_signal", err = errno;
  } else {
    siginfo_t info{};
    int rc;
    while ((rc = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd.get()), &info,
                          WEXITED)) != 0 &&
           errno == EINTR) {
    }
    if (rc == 0) return make("pidfd", true);
    step = "waitid(P_PIDFD)", err = errno;
  }
  ::kill(pid, SIGKILL);
  (void)sys::wait4_blocking(pid);
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
  const char* capability;  // nullptr: a step other capabilities depend on, not reported itself
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
[[noreturn]] void ns_child(int sync_read, int out) noexcept {
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
    ::_exit(0);
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
  if (!step(kMountNs, sys_rc(::unshare(CLONE_NEWNS)))) ::_exit(0);
  // A mount namespace owned by a new user namespace never propagates back to the host's (its
  // shared mounts become slaves), so the mounts below stay in here even if this step fails.
  step(kMountPrivate, sys_rc(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr)));
  if (!step(kTmpfs,
            sys_rc(::mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755"))))
    ::_exit(0);
  step(kBindRecRo, bind_rec_ro("/usr", "/tmp/usr"));
  if (::chdir("/tmp") != 0) ::_exit(0);
  int pivot = sys::raw_pivot_root(".", ".");
  if (pivot == 0 && ::umount2(".", MNT_DETACH) != 0) pivot = -errno;
  step(kPivotRoot, -pivot);
  step(kChroot, sys_rc(::chroot(".")));
  ::_exit(0);
}

void probe_namespaces(const CapabilityProbeOptions& o, HostCapabilities& caps) {
  std::array<int, kNsStepCount> result;
  result.fill(-1);  // not reached
  int clone_err = 0;
  std::string failed_how;

  auto sync = sys::make_pipe();
  auto out = sys::make_pipe();
  if (!sync || !out) {
    clone_err = EMFILE;
    failed_how = "pipe";
  } else {
    boost::system::result<pid_t> child = boost::system::error_code{};
    {
      BlockAllSignals blocked;
      child = sys::clone_fork(CLONE_NEWUSER);
      if (child && *child == 0) {
        ::close(sync->write.get());
        ::close(out->read.get());
        ns_child(sync->read.get(), out->write.get());
      }
    }
    if (!child) {
      clone_err = child.error().value();
      failed_how = "clone(CLONE_NEWUSER)";
    } else {
      sync->read.reset();
      out->write.reset();
      // As the jail does it: the privileged parent writes the maps for the child.
      const std::string base = "/proc/" + std::to_string(*child);
      const std::string umap = "0 " + std::to_string(o.uid) + " 1\n";
      const std::string gmap = "0 " + std::to_string(o.gid) + " 1\n";
      int map_err = 0;
      for (const auto& [file, text] :
           {std::pair{base + "/uid_map", umap}, {base + "/gid_map", gmap}}) {
        sys::UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CLOEXEC));
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
      for (const Record& r : collect(out->read.get(), *child)) {
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
      if (info.capability != nullptr) caps.items.push_back(make(info.capability, true));
      continue;
    }
    if (err > 0) {
      const std::string detail = std::string(info.call) + ": " + errno_text(err);
      if (info.capability != nullptr)
        caps.items.push_back(make(info.capability, false, err, detail));
      // Later steps only ran if these worked.
      if (blocked_by.empty() && (s == kUserIds || s == kMountNs || s == kTmpfs))
        blocked_by = detail;
      continue;
    }
    if (info.capability != nullptr) {
      caps.items.push_back(make(info.capability, false, 0,
                                blocked_by.empty() ? "not reached" : "needs " + blocked_by));
    }
  }
}

}  // namespace

bool HostCapabilities::has(std::string_view name) const {
  const Capability* c = find(name);
  return c != nullptr && c->ok;
}

const Capability* HostCapabilities::find(std::string_view name) const {
  for (const auto& c : items) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

Capability probe_seccomp(const seccomp_policies::BpfProgram& program) {
  auto out = sys::make_pipe();
  if (!out) return make("seccomp", false, out.error().value(), "pipe: " + out.error().message());
  boost::system::result<pid_t> child = boost::system::error_code{};
  {
    BlockAllSignals blocked;
    child = sys::clone_fork();
    if (child && *child == 0) {
      // Async-signal-safe from here on.
      const int fd = out->write.get();
      ::close(out->read.get());
      if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        report(fd, 0, errno);
        ::_exit(0);
      }
      if (int err = seccomp_policies::install(program); err != 0) {
        report(fd, 1, err);
        ::_exit(0);
      }
      report(fd, 1, 0);
      // Each of these must be refused with EPERM (the record carries what happened instead).
      report(fd, 2, ::unshare(CLONE_NEWUSER) == 0 ? 0 : errno);
      const long pid = ::syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, nullptr, nullptr, nullptr, 0);
      if (pid == 0) ::_exit(0);
      if (pid > 0) {
        int status;
        ::waitpid(static_cast<pid_t>(pid), &status, 0);
      }
      report(fd, 3, pid < 0 ? errno : 0);
      const int sock = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      report(fd, 4, sock < 0 ? errno : 0);
      report(fd, 5, ::unshare(CLONE_NEWNET) == 0 ? 0 : errno);
      ::_exit(0);
    }
  }
  if (!child)
    return make("seccomp", false, child.error().value(), "fork: " + child.error().message());
  out->write.reset();
  const auto records = collect(out->read.get(), *child);

  static constexpr const char* kWhat[] = {
      "prctl(PR_SET_NO_NEW_PRIVS)", "loading the filter", "unshare(CLONE_NEWUSER)",
      "clone(CLONE_NEWUSER)",       "socket(AF_INET)",    "unshare(CLONE_NEWNET)"};
  bool loaded = false;
  std::string wrong;
  int wrong_err = 0;
  for (const Record& r : records) {
    if (r.step < 0 || r.step > 5) continue;
    const char* what = kWhat[r.step];
    if (r.step <= 1) {
      if (r.err != 0)
        return make("seccomp", false, r.err, std::string(what) + ": " + errno_text(r.err));
      loaded = r.step == 1;
      continue;
    }
    if (r.err != EPERM) {
      if (!wrong.empty()) wrong += "; ";
      wrong += std::string(what) + (r.err == 0 ? " succeeded" : ": " + errno_text(r.err)) +
               " under the filter (expected EPERM)";
      if (wrong_err == 0) wrong_err = r.err;
    }
  }
  if (!loaded) return make("seccomp", false, 0, "the probe child died before loading the filter");
  if (records.empty() || records.back().step != 5)
    return make("seccomp", false, 0, "the probe child died under the filter");
  if (!wrong.empty()) return make("seccomp", false, wrong_err, wrong);
  return make("seccomp", true);
}

std::vector<Capability> probe_rlimits() {
  struct Limit {
    const char* name;
    int resource;
    rlim_t value;
  };
  static constexpr Limit kLimits[] = {
      {"AS", RLIMIT_AS, 512ull << 20},
      {"CPU", RLIMIT_CPU, 10},
      {"NPROC", RLIMIT_NPROC, 64},
      {"NOFILE", RLIMIT_NOFILE, 256},
      {"FSIZE", RLIMIT_FSIZE, 64ull << 20},
      {"STACK", RLIMIT_STACK, 8ull << 20},
      {"CORE", RLIMIT_CORE, 0},
      {"MEMLOCK", RLIMIT_MEMLOCK, 0},
      {"MSGQUEUE", RLIMIT_MSGQUEUE, 0},
  };
  constexpr int kCount = static_cast<int>(sizeof kLimits / sizeof kLimits[0]);
  std::vector<Capability> out;
  auto pipe = sys::make_pipe();
  if (!pipe) return out;
  boost::system::result<pid_t> child = boost::system::error_code{};
  {
    BlockAllSignals blocked;
    child = sys::clone_fork();
    if (child && *child == 0) {
      ::close(pipe->read.get());
      for (int i = 0; i < kCount; ++i) {
        const rlimit rl{kLimits[i].value, kLimits[i].value};
        report(pipe->write.get(), i,
               ::syscall(SYS_setrlimit, kLimits[i].resource, &rl) == 0 ? 0 : errno);
      }
      ::_exit(0);
    }
  }
  if (!child) return out;
  pipe->write.reset();
  for (const Record& r : collect(pipe->read.get(), *child)) {
    if (r.step < 0 || r.step >= kCount) continue;
    const std::string name = std::string("rlimit_") + kLimits[r.step].name;
    out.push_back(r.err == 0
                      ? make(name, true)
                      : make(name, false, r.err, std::string("setrlimit: ") + errno_text(r.err)));
  }
  return out;
}

namespace {

enum RootStep : int {
  kRootPrivate,
  kRootProbeTmpfs,
  kRootMarker,
  kRootProc,
  kRootProcSelf,
  kRootTmpTmpfs,
  kRootConnect,
};

// Async-signal-safe: runs in the forked child (root, new namespaces, no user namespace).
[[noreturn]] void root_ns_child(int out, int ready_write, int go_read, const char* probe_dir,
                                const char* marker, bool pid_ns, bool net_ns,
                                const sockaddr_in* listener) noexcept {
  if (net_ns) {
    const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int rc = s < 0 ? errno : 0;
    if (s >= 0) {
      rc = ::connect(s, reinterpret_cast<const sockaddr*>(listener), sizeof *listener) == 0 ? 0
                                                                                            : errno;
      ::close(s);
    }
    report(out, kRootConnect, rc);  // 0: reached our loopback, not isolated
  }
  report(out, kRootPrivate,
         ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 ? 0 : errno);
  int err = ::mount("tmpfs", probe_dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0700") == 0
                ? 0
                : errno;
  report(out, kRootProbeTmpfs, err);
  if (err == 0) {
    const int fd = ::open(marker, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    report(out, kRootMarker, fd >= 0 ? 0 : errno);
    if (fd >= 0) ::close(fd);
  }
  // The parent looks for the marker in its own view and answers 'y' if it is not there.
  const char ready = 1;
  if (::write(ready_write, &ready, 1) != 1) ::_exit(1);
  char verdict = 0;
  if (::read(go_read, &verdict, 1) != 1 || verdict != 'y') ::_exit(0);
  if (pid_ns) {
    report(out, kRootProc,
           ::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) == 0
               ? 0
               : errno);
    char self[16] = {};
    const ssize_t n = ::readlink("/proc/self", self, sizeof self - 1);
    report(out, kRootProcSelf, n == 1 && self[0] == '1' ? 0 : ESRCH);
  }
  report(out, kRootTmpTmpfs,
         ::mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=1777") == 0
             ? 0
             : errno);
  ::_exit(0);
}

}  // namespace

RootNamespaces probe_root_namespaces(const std::string& probe_base) {
  RootNamespaces out;
  static constexpr struct {
    unsigned long flag;
    const char* name;
  } kFlags[] = {{CLONE_NEWPID, "root_pid_ns"},
                {CLONE_NEWNS, "root_mount_ns"},
                {CLONE_NEWNET, "root_net_ns"},
                {CLONE_NEWIPC, "root_ipc_ns"},
                {CLONE_NEWUTS, "root_uts_ns"}};
  for (const auto& f : kFlags) {
    boost::system::result<pid_t> child = boost::system::error_code{};
    {
      BlockAllSignals blocked;
      child = sys::clone_fork(f.flag);
      if (child && *child == 0) ::_exit(0);
    }
    if (!child) {
      out.items.push_back(
          make(f.name, false, child.error().value(), "clone: " + child.error().message()));
      continue;
    }
    (void)sys::wait4_blocking(*child);
    out.clone_flags |= f.flag;
    out.items.push_back(make(f.name, true));
  }
  if (!(out.clone_flags & CLONE_NEWNS)) return out;

  // A directory of our own to mount over, and a listener for the network check.
  std::string dir = probe_base + "/pysandbox-mount-probe-XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) {
    out.items.push_back(make("root_mounts", false, errno, "mkdtemp: " + errno_text(errno)));
    return out;
  }
  const std::string marker = dir + "/marker";
  const bool pid_ns = (out.clone_flags & CLONE_NEWPID) != 0;
  const bool net_ns = (out.clone_flags & CLONE_NEWNET) != 0;
  sys::UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  const bool listening =
      listener && ::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::listen(listener.get(), 1) == 0 &&
      ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0;

  auto records = sys::make_pipe();
  auto ready = sys::make_pipe();
  auto go = sys::make_pipe();
  if (!records || !ready || !go) {
    ::rmdir(dir.c_str());
    return out;
  }
  const unsigned long flags =
      CLONE_NEWNS | (pid_ns ? CLONE_NEWPID : 0) | (net_ns ? CLONE_NEWNET : 0);
  boost::system::result<pid_t> child = boost::system::error_code{};
  {
    BlockAllSignals blocked;
    child = sys::clone_fork(flags);
    if (child && *child == 0) {
      ::close(records->read.get());
      ::close(ready->read.get());
      ::close(go->write.get());
      root_ns_child(records->write.get(), ready->write.get(), go->read.get(), dir.c_str(),
                    marker.c_str(), pid_ns, net_ns && listening, &addr);
    }
  }
  if (!child) {
    ::rmdir(dir.c_str());
    out.items.push_back(
        make("root_mounts", false, child.error().value(), "clone: " + child.error().message()));
    return out;
  }
  records->write.reset();
  ready->write.reset();
  go->read.reset();
  char c = 0;
  const bool child_ready = ::read(ready->read.get(), &c, 1) == 1;
  // The child's tmpfs (and marker) must not be visible from here.
  struct stat st {};
  const bool propagated = child_ready && ::lstat(marker.c_str(), &st) == 0;
  if (propagated) ::umount2(dir.c_str(), MNT_DETACH);  // undo it on our side
  const char verdict = child_ready && !propagated ? 'y' : 'n';
  ssize_t ignored = ::write(go->write.get(), &verdict, 1);
  (void)ignored;
  go->write.reset();
  std::array<int, kRootConnect + 1> result;
  result.fill(-1);
  for (const Record& r : collect(records->read.get(), *child)) {
    if (r.step >= 0 && r.step <= kRootConnect) result[static_cast<std::size_t>(r.step)] = r.err;
  }
  ::umount2(dir.c_str(), MNT_DETACH);  // in case the child's mount landed here after all
  ::rmdir(dir.c_str());

  const int private_err = result[kRootPrivate];
  std::string why;
  if (result[kRootProbeTmpfs] != 0) {
    why = "mount tmpfs: " + (result[kRootProbeTmpfs] > 0 ? errno_text(result[kRootProbeTmpfs])
                                                         : std::string("not reached"));
  } else if (propagated) {
    why = "a mount in a new mount namespace showed up in ours (make-rprivate: " +
          (private_err == 0 ? std::string("ok") : errno_text(private_err)) + ")";
  } else if (!child_ready) {
    why = "the probe child died";
  } else if (private_err != 0 && private_err != EINVAL) {
    why = "make-rprivate: " + errno_text(private_err);
  } else if (result[kRootTmpTmpfs] != 0) {
    why = "mount tmpfs on /tmp: " + (result[kRootTmpTmpfs] > 0 ? errno_text(result[kRootTmpTmpfs])
                                                               : std::string("not reached"));
  }
  out.mounts = why.empty();
  out.tolerate_private_failure = out.mounts && private_err == EINVAL;
  out.items.push_back(out.mounts ? make("root_mounts", true, 0,
                                        out.tolerate_private_failure
                                            ? "make-rprivate: Invalid argument, but mounts "
                                              "do not propagate here"
                                            : "")
                                 : make("root_mounts", false, 0, why));
  if (pid_ns && out.mounts) {
    out.proc = result[kRootProc] == 0 && result[kRootProcSelf] == 0;
    out.items.push_back(out.proc ? make("root_proc", true)
                                 : make("root_proc", false, std::max(result[kRootProc], 0),
                                        "mount proc / readlink /proc/self"));
  }
  if (net_ns && listening) {
    const int rc = result[kRootConnect];
    out.net_isolated = rc > 0;
    out.items.push_back(
        out.net_isolated
            ? make("root_net_isolated", true)
            : make("root_net_isolated", false, 0,
                   rc == 0 ? "a new network namespace still reaches our loopback" : "not reached"));
  }
  return out;
}

Capability probe_proc_environ_protected(uid_t uid, gid_t gid) {
  const std::string path = "/proc/" + std::to_string(::getpid()) + "/environ";
  auto out = sys::make_pipe();
  if (!out) return make("proc_environ_protected", false, out.error().value(), "pipe");
  boost::system::result<pid_t> child = boost::system::error_code{};
  {
    BlockAllSignals blocked;
    child = sys::clone_fork();
    if (child && *child == 0) {
      ::close(out->read.get());
      if (::syscall(SYS_setgroups, 0, nullptr) != 0 ||
          ::syscall(SYS_setresgid, gid, gid, gid) != 0 ||
          ::syscall(SYS_setresuid, uid, uid, uid) != 0) {
        report(out->write.get(), 0, errno);
        ::_exit(0);
      }
      report(out->write.get(), 0, 0);
      const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      char c;
      const int err = fd < 0 ? errno : (::read(fd, &c, 1) < 0 ? errno : 0);
      report(out->write.get(), 1, err);  // 0: readable
      ::_exit(0);
    }
  }
  if (!child) return make("proc_environ_protected", false, child.error().value(), "fork");
  out->write.reset();
  const auto records = collect(out->read.get(), *child);
  if (records.size() != 2 || records[0].err != 0)
    return make("proc_environ_protected", false, records.empty() ? 0 : records[0].err,
                "could not become uid " + std::to_string(uid));
  if (records[1].err == 0)
    return make("proc_environ_protected", false, 0,
                "uid " + std::to_string(uid) + " can read " + path);
  return make("proc_environ_protected", true);
}

HostCapabilities probe_capabilities(const CapabilityProbeOptions& options) {
  HostCapabilities caps;
  caps.items.push_back(probe_clone3());
  caps.items.push_back(probe_pidfd());
  probe_namespaces(options, caps);
  if (options.seccomp != nullptr) caps.items.push_back(probe_seccomp(*options.seccomp));
  return caps;
}

}  // namespace pysandbox::jail
