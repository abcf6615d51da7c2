#include "jail/rlimit_spawner.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>

#include "base/sys/block_signals.hpp"
#include "base/sys/syscalls.hpp"
#include "jail/sandbox_init.hpp"
#include "jail/scratch_dir.hpp"
#include "seccomp_policies/bpf_program.hpp"

namespace pysandbox::jail {

namespace {

constexpr int kSetupFailedExit = 125;
// Where the child parks its inherited fds before placing them at 0..4.
constexpr int kParkFdBase = 1000;
// Last resort when close_range cannot take a range at all: mark fds CLOEXEC one by one up to
// here (the server itself never gets near it).
constexpr int kCloexecLoopEnd = 65536;

struct ChildArgs {
  const RlimitJailConfig* config;
  const char* tmpfs_data;
  const RlimitRunParams* params;
  const char* const* argv;
  const char* const* envp;
  pid_t parent;
  int err_read;
  int err_write;
  int init_fd;
};

// Everything below runs in the forked child before execve: raw syscalls and async-signal-safe
// libc only, no allocation, no locks (the parent may be multi-threaded). id changes go through
// syscall(2) because glibc's setxid wrappers would signal the parent's other threads.
[[noreturn]] void fail(int err_fd, RlimitStep step, int index, int err) noexcept {
  ChannelRecord r;
  r.kind = static_cast<std::int32_t>(RecordKind::kSetupFailed);
  r.step = static_cast<std::int32_t>(step);
  r.index = index;
  r.err = err;
  write_record(err_fd, r);
  ::_exit(kSetupFailedExit);
}

// Closes everything from `first` up. gVisor refuses close_range with an upper bound past its fd
// table (EINVAL for ~0U), so retry with the fd limit, then one fd at a time.
int close_from(unsigned first) noexcept {
  if (base::sys::raw_close_range(first, ~0U, 0) == 0) return 0;
  rlimit rl{};
  unsigned last = kCloexecLoopEnd;
  if (::syscall(SYS_getrlimit, RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
      rl.rlim_max > first && rl.rlim_max < static_cast<rlim_t>(kCloexecLoopEnd)) {
    last = static_cast<unsigned>(rl.rlim_max);
  }
  if (base::sys::raw_close_range(first, last - 1, 0) == 0) return 0;
  for (unsigned fd = first; fd < last; ++fd) ::close(static_cast<int>(fd));
  return 0;
}

[[noreturn]] void child_main(const ChildArgs& a) noexcept {
  int err_fd = a.err_write;
  const RlimitRunParams& p = *a.params;
  // The server's copy must be the only read end: its absence is how we learn the server died.
  ::close(a.err_read);

  // Handlers do not survive execve but ignored signals and the mask do: start clean. The parent
  // blocked everything around the clone, so no handler of the server runs in here.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
  sigset_t none;
  ::sigemptyset(&none);
  if (::sigprocmask(SIG_SETMASK, &none, nullptr) != 0) fail(err_fd, RlimitStep::kSignals, 0, errno);

  // Own session and process group (pgid = sid = our pid): the group can be killed as a whole and
  // no terminal of the server's can be reached.
  if (::setsid() < 0) fail(err_fd, RlimitStep::kSession, 0, errno);

  const RlimitNamespaces& ns = a.config->namespaces;
  if (ns.clone_flags & CLONE_NEWUTS) {
    if (::sethostname(ns.hostname.c_str(), ns.hostname.size()) != 0)
      fail(err_fd, RlimitStep::kHostname, 0, errno);
  }
  if (ns.clone_flags & CLONE_NEWNS) {
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 &&
        !(ns.tolerate_private_failure && errno == EINVAL))
      fail(err_fd, RlimitStep::kMount, 0, errno);
    // Our own PID namespace's processes only: the server and other runs disappear from /proc.
    if (ns.mount_proc &&
        ::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
      fail(err_fd, RlimitStep::kMount, 1, errno);
    for (std::size_t i = 0; i < ns.tmpfs_dirs.size(); ++i) {
      if (::mount("tmpfs", ns.tmpfs_dirs[i].c_str(), "tmpfs", MS_NOSUID | MS_NODEV, a.tmpfs_data) !=
          0)
        fail(err_fd, RlimitStep::kMount, 2 + static_cast<int>(i), errno);
    }
  }

  // Park the five fds and the channel high first so placing them at 0..5 cannot clobber one
  // another. init does not execve: whatever else is open (other requests' pipes, the listening
  // socket) is closed for real.
  int parked[7];
  for (int i = 0; i < 7; ++i) {
    parked[i] = ::fcntl(i < 5    ? p.fds[i]
                        : i == 5 ? err_fd
                                 : a.init_fd,
                        F_DUPFD_CLOEXEC, kParkFdBase);
    if (parked[i] < 0) fail(err_fd, RlimitStep::kFds, i, errno);
  }
  for (int i = 0; i < 5; ++i) {
    if (::dup2(parked[i], i) != i) fail(err_fd, RlimitStep::kFds, 10 + i, errno);
  }
  if (::dup3(parked[5], 5, O_CLOEXEC) != 5) fail(err_fd, RlimitStep::kFds, 15, errno);
  err_fd = 5;
  if (::dup3(parked[6], 6, O_CLOEXEC) != 6) fail(err_fd, RlimitStep::kFds, 16, errno);
  if (int err = close_from(7); err != 0) fail(err_fd, RlimitStep::kCloseFds, 0, err);

  ::umask(077);

  const Rlimits& l = p.limits;
  const struct {
    int resource;
    rlim_t soft;
    rlim_t hard;
    bool required;
  } limits[] = {
      {RLIMIT_AS, l.address_space, l.address_space, true},
      // SIGXCPU at the soft limit, SIGKILL at the hard one: a backstop behind the deadline.
      {RLIMIT_CPU, l.cpu_seconds, l.cpu_seconds + 1, true},
      // Per uid, system-wide: exact here because each slot has its own uid and the previous
      // run's processes are all gone before the slot is used again.
      {RLIMIT_NPROC, l.processes, l.processes, true},
      {RLIMIT_NOFILE, l.open_files, l.open_files, true},
      {RLIMIT_FSIZE, l.file_size, l.file_size, true},
      {RLIMIT_STACK, p.stack_bytes, p.stack_bytes, true},
      {RLIMIT_CORE, 0, 0, true},
      // Secondary: gVisor refuses to set these (EPERM); it has no mlock or POSIX message queue
      // limits to protect anyway. probe::rlimits() reports which ones hold.
      {RLIMIT_MEMLOCK, 0, 0, false},
      {RLIMIT_MSGQUEUE, 0, 0, false},
  };
  for (std::size_t i = 0; i < sizeof limits / sizeof limits[0]; ++i) {
    const rlimit rl{limits[i].soft, limits[i].hard};
    if (::syscall(SYS_setrlimit, limits[i].resource, &rl) != 0 && limits[i].required)
      fail(err_fd, RlimitStep::kRlimit, limits[i].resource, errno);
  }

  if (p.switch_ids) {
    // The bounding set only matters for file capabilities at execve (no_new_privs already makes
    // those inert); dropping it needs CAP_SETPCAP, so before the uid change, and a server
    // without it (GKE Sandbox keeps only SETUID, SETGID and KILL) does without.
    for (int cap = 0; cap <= 63; ++cap) {
      if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0 || errno == EINVAL) continue;
      if (errno == EPERM) break;
      fail(err_fd, RlimitStep::kCapabilities, cap, errno);
    }
    // No supplementary groups: root's would still grant group access to host files. Leaving uid
    // 0 for a non-zero real, effective and saved uid clears every capability set.
    if (::syscall(SYS_setgroups, 0, nullptr) != 0) fail(err_fd, RlimitStep::kIds, 0, errno);
    if (::syscall(SYS_setresgid, p.gid, p.gid, p.gid) != 0)
      fail(err_fd, RlimitStep::kIds, 1, errno);
    if (::syscall(SYS_setresuid, p.uid, p.uid, p.uid) != 0)
      fail(err_fd, RlimitStep::kIds, 2, errno);
    uid_t r = 0, e = 0, s = 0;
    if (::syscall(SYS_getresuid, &r, &e, &s) != 0 || r != p.uid || e != p.uid || s != p.uid)
      fail(err_fd, RlimitStep::kIds, 3, EPERM);
  }
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
    fail(err_fd, RlimitStep::kCapabilities, 64, errno);

  // As the run's uid: its directory is its own from the start.
  if (p.create_cwd && ::mkdir(p.cwd.c_str(), 0700) != 0) fail(err_fd, RlimitStep::kChdir, 1, errno);
  if (::chdir(p.cwd.c_str()) != 0) fail(err_fd, RlimitStep::kChdir, 0, errno);

  // After the id change, which clears it. If the server is already gone, so must we be: it
  // holds the only read end of our setup channel (in a PID namespace of our own the parent is
  // outside it, and getppid() says 0 either way).
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail(err_fd, RlimitStep::kParentDeath, 0, errno);
  if ((!(ns.clone_flags & CLONE_NEWPID) && ::getppid() != a.parent) ||
      !base::sys::has_reader(err_fd))
    fail(err_fd, RlimitStep::kParentDeath, 1, ESRCH);

  // no_new_privs before seccomp: it lets an unprivileged task install a filter and makes
  // set-uid binaries inert.
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    fail(err_fd, RlimitStep::kNoNewPrivs, 0, errno);

  if (a.config->seccomp != nullptr) {
    if (int err = seccomp_policies::install(*a.config->seccomp); err != 0)
      fail(err_fd, RlimitStep::kSeccomp, 0, err);
  }

  // init (jail/sandbox_init.hpp): starts the runner, then only reaps. Without a PID namespace
  // of its own it asks for the run's orphans (gVisor refuses; they then go to the server, which
  // is a subreaper or pid 1 itself).
  if (!(ns.clone_flags & CLONE_NEWPID)) (void)::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  // kill(-1) reaches the run alone in its own PID namespace or as its own uid; otherwise (the
  // server is not root) it would reach the server: then only the run's process group.
  const KillScope scope = (ns.clone_flags & CLONE_NEWPID) != 0 || p.switch_ids
                              ? KillScope::kEverything
                              : KillScope::kGroup;
  const int err =
      -exec_init_then_runner(6, err_fd, scope, static_cast<std::int32_t>(RlimitStep::kExecve),
                             a.config->executable.c_str(), a.argv, a.envp);
  fail(err_fd, RlimitStep::kInit, 0, err);
}

std::string_view env_key(std::string_view kv) { return kv.substr(0, kv.find('=')); }

const char* step_name(RlimitStep step) {
  switch (step) {
    case RlimitStep::kSignals:
      return "signals";
    case RlimitStep::kSession:
      return "setsid";
    case RlimitStep::kHostname:
      return "hostname";
    case RlimitStep::kMount:
      return "mount";
    case RlimitStep::kFds:
      return "fds";
    case RlimitStep::kCloseFds:
      return "close_fds";
    case RlimitStep::kChdir:
      return "chdir";
    case RlimitStep::kRlimit:
      return "rlimit";
    case RlimitStep::kCapabilities:
      return "capabilities";
    case RlimitStep::kIds:
      return "ids";
    case RlimitStep::kParentDeath:
      return "parent_death_signal";
    case RlimitStep::kNoNewPrivs:
      return "no_new_privs";
    case RlimitStep::kRunner:
      return "runner";
    case RlimitStep::kInit:
      return "init";
    case RlimitStep::kSeccomp:
      return "seccomp";
    case RlimitStep::kExecve:
      return "execve";
  }
  return "unknown";
}

}  // namespace

boost::system::result<RlimitSpawner> RlimitSpawner::create(RlimitJailConfig config) {
  if (config.executable.empty() || config.executable[0] != '/' || config.argv.empty())
    return std::make_error_code(std::errc::invalid_argument);
  const RlimitNamespaces& ns = config.namespaces;
  constexpr unsigned long kAllowed =
      CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS;
  if ((ns.clone_flags & ~kAllowed) != 0 ||
      ((ns.mount_proc || !ns.tmpfs_dirs.empty()) && !(ns.clone_flags & CLONE_NEWNS)) ||
      (ns.mount_proc && !(ns.clone_flags & CLONE_NEWPID)))
    return std::make_error_code(std::errc::invalid_argument);
  for (const auto& dir : ns.tmpfs_dirs) {
    if (dir.empty() || dir[0] != '/') return std::make_error_code(std::errc::invalid_argument);
  }
  RlimitSpawner s;
  s.tmpfs_data_ = "size=" + std::to_string(ns.tmpfs_bytes) + ",mode=1777";
  s.init_.reset(::open(config.init_path.c_str(), O_PATH | O_CLOEXEC));
  if (!s.init_) return base::sys::last_errno();
  s.config_ = std::move(config);
  return s;
}

boost::system::result<RlimitSpawned> RlimitSpawner::spawn(const RlimitRunParams& params) const {
  if (params.cwd.empty() || params.cwd[0] != '/')
    return std::make_error_code(std::errc::invalid_argument);
  // execve's arrays, built before the fork: the child must not allocate.
  std::vector<const char*> argv;
  for (const auto& arg : config_.argv) argv.push_back(arg.c_str());
  argv.push_back(nullptr);
  std::vector<const char*> envp;
  for (const auto& kv : config_.env) {
    bool overridden = false;
    for (const auto& own : params.env) overridden = overridden || env_key(own) == env_key(kv);
    if (!overridden) envp.push_back(kv.c_str());
  }
  for (const auto& kv : params.env) envp.push_back(kv.c_str());
  envp.push_back(nullptr);

  auto errors = base::sys::make_pipe();
  if (!errors) return errors.error();

  ChildArgs args{&config_,           tmpfs_data_.c_str(), &params,
                 argv.data(),        envp.data(),         ::getpid(),
                 errors->read.get(), errors->write.get(), init_.get()};
  boost::system::result<pid_t> cloned = boost::system::error_code{};
  {
    base::sys::BlockAllSignals blocked;
    cloned = base::sys::clone_fork(config_.namespaces.clone_flags);
    if (cloned && *cloned == 0) child_main(args);
  }
  if (!cloned) return cloned.error();

  RlimitSpawned out;
  out.pid = *cloned;
  out.channel = std::move(errors->read);
  return out;
}

std::string RlimitSpawner::describe(const SetupFailure& failure) {
  return std::string(step_name(static_cast<RlimitStep>(failure.step))) + " #" +
         std::to_string(failure.index) + ": " + std::strerror(failure.err);
}

boost::system::result<void> run_as_uid(uid_t uid, gid_t gid, int (*fn)(const void*) noexcept,
                                       const void* arg) {
  if (uid == 0) return base::sys::errno_code(EINVAL);  // kill(-1) as root would take everything
  boost::system::result<pid_t> helper = boost::system::error_code{};
  {
    base::sys::BlockAllSignals blocked;
    helper = base::sys::clone_fork();
    if (helper && *helper == 0) {
      // Raw syscalls only (see child_main). Exit status = errno or 0.
      if (::syscall(SYS_setgroups, 0, nullptr) != 0) ::_exit(errno);
      if (::syscall(SYS_setresgid, gid, gid, gid) != 0) ::_exit(errno);
      if (::syscall(SYS_setresuid, uid, uid, uid) != 0) ::_exit(errno);
      uid_t r = 0, e = 0, s = 0;
      if (::syscall(SYS_getresuid, &r, &e, &s) != 0 || r != uid || e != uid || s != uid)
        ::_exit(EPERM);
      ::_exit(fn(arg) & 0xff);
    }
  }
  if (!helper) return helper.error();
  auto status = base::sys::wait4_blocking(*helper);
  if (!status) return status.error();
  if (status->signal != 0) return base::sys::errno_code(EINTR);
  if (status->code != 0) return base::sys::errno_code(status->code);
  return {};
}

boost::system::result<void> kill_all_of_uid(uid_t uid, gid_t gid) {
  return run_as_uid(
      uid, gid,
      [](const void*) noexcept -> int {
        // ESRCH: there was nothing left to kill.
        return ::syscall(SYS_kill, -1, SIGKILL) == 0 || errno == ESRCH ? 0 : errno;
      },
      nullptr);
}

boost::system::result<void> remove_as_uid(uid_t uid, gid_t gid, int dir_fd,
                                          const std::vector<std::string>& names,
                                          const std::vector<std::string>& shared_dirs) {
  // Everything the helper needs, laid out before the fork.
  struct Job {
    uid_t uid;
    int dir_fd;
    std::vector<const char*> names;
    std::vector<const char*> shared;
  } job{uid, dir_fd, {}, {}};
  for (const auto& n : names) job.names.push_back(n.c_str());
  for (const auto& d : shared_dirs) job.shared.push_back(d.c_str());
  return run_as_uid(
      uid, gid,
      [](const void* arg) noexcept -> int {
        const auto& j = *static_cast<const Job*>(arg);
        int first = 0;
        for (const char* name : j.names) {
          const int err = remove_tree_raw(j.dir_fd, name);
          if (first == 0) first = err;
        }
        for (const char* dir : j.shared) {
          std::size_t removed = 0;
          const int err = remove_entries_owned_by_raw(dir, j.uid, &removed);
          if (first == 0) first = err;
        }
        return first;
      },
      &job);
}

std::vector<UidProcess> processes_of_uid(uid_t uid) {
  std::vector<UidProcess> out;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return out;
  const pid_t self = ::getpid();
  while (const dirent* e = ::readdir(proc)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    std::ifstream status(std::string("/proc/") + e->d_name + "/status");
    std::string line;
    UidProcess p;
    p.pid = static_cast<pid_t>(pid);
    bool has_uid = false;
    long ppid = -1;
    while (std::getline(status, line)) {
      if (line.rfind("State:", 0) == 0) {
        p.zombie = line.find('Z') != std::string::npos;
      } else if (line.rfind("PPid:", 0) == 0) {
        ppid = std::strtol(line.c_str() + 5, nullptr, 10);
      } else if (line.rfind("Uid:", 0) == 0) {
        has_uid = std::strtoul(line.c_str() + 4, nullptr, 10) == uid;
        break;  // Uid comes after State and PPid
      }
    }
    if (!has_uid) continue;
    p.our_child = ppid == self;
    out.push_back(p);
  }
  ::closedir(proc);
  return out;
}

}  // namespace pysandbox::jail
