#include "jail/spawner.hpp"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "base/sys/syscalls.hpp"
#include "jail/sandbox_init.hpp"
#include "seccomp_policies/policy.hpp"

namespace pysandbox::jail {

namespace {

constexpr int kSetupFailedExit = 125;
// Where the child parks its inherited fds before placing them at 0..4, above anything the
// server is likely to hold.
constexpr int kParkFdBase = 1000;

constexpr std::uint64_t kNamespaceFlags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS |
                                          CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS |
                                          CLONE_NEWCGROUP;

struct ChildArgs {
  const std::vector<MountOp>* plan;
  const JailConfig* config;
  const Rlimits* limits;
  const char* const* argv;
  const char* const* envp;
  int sync_read;
  int sync_write;
  int err_read;  // -1 when the caller owns the channel (fork_ready)
  int err_write;
  // Placed at 0..nplace-1; the channel then goes to fd nplace and every other fd is closed.
  const int* place;
  int nplace;
  int init_fd;  // pysandbox-init: goes to fd nplace + 1
};

// Everything below runs in the cloned child before execve: raw syscalls and async-signal-safe
// libc only, no allocation, no locks (glibc's own state was copied from a possibly
// multi-threaded parent). id changes go through syscall(2) directly because glibc's setxid
// wrappers would try to signal the parent's other threads.
[[noreturn]] void fail(int err_fd, Step step, int index, int err) noexcept {
  ChannelRecord r;
  r.kind = static_cast<std::int32_t>(RecordKind::kSetupFailed);
  r.step = static_cast<std::int32_t>(step);
  r.index = index;
  r.err = err;
  write_record(err_fd, r);
  ::_exit(kSetupFailedExit);
}

int write_file(int dir_fd, const char* path, const char* data, std::size_t len) noexcept {
  int fd = ::openat(dir_fd, path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  ssize_t n = ::write(fd, data, len);
  int err = n == static_cast<ssize_t>(len) ? 0 : (n < 0 ? errno : EIO);
  ::close(fd);
  return err;
}

// Returns the fd the setup-error channel ended up on, once every step up to seccomp has run.
int child_steps(const ChildArgs& a) noexcept {
  int err_fd = a.err_write;
  ::close(a.sync_write);
  if (a.err_read >= 0) ::close(a.err_read);

  // Handlers do not survive execve but ignored signals and the mask do: start clean. A forked
  // interpreter keeps its own dispositions (the ones a fresh interpreter would install).
  if (a.err_read >= 0) {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
  }
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);

  // Until the parent has written uid_map/gid_map we have no valid ids in our namespace.
  char go = 0;
  if (::read(a.sync_read, &go, 1) != 1) fail(err_fd, Step::kSync, 0, errno ? errno : EPIPE);
  ::close(a.sync_read);

  // Become root of the new user namespace (= the unprivileged host uid), dropping the host
  // root's supplementary groups, which would otherwise still grant group access to host files.
  if (::syscall(SYS_setgroups, 0, nullptr) != 0) fail(err_fd, Step::kIds, 0, errno);
  if (::syscall(SYS_setresgid, 0, 0, 0) != 0) fail(err_fd, Step::kIds, 1, errno);
  if (::syscall(SYS_setresuid, 0, 0, 0) != 0) fail(err_fd, Step::kIds, 2, errno);

  // If the server dies, its sandboxes die with it (and so does the whole PID namespace). Only
  // after the id change: commit_creds() clears the parent-death signal whenever the effective
  // uid changes, and becoming root of the new user namespace changes it (host root -> the
  // sandbox's uid). The server may have died before this line: it holds the only read end of
  // our setup channel, so a channel without readers means it is gone (getppid() cannot tell:
  // the parent is outside our PID namespace).
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail(err_fd, Step::kParentDeath, 0, errno);
  if (!base::sys::has_reader(err_fd)) ::_exit(kSetupFailedExit);

  const char* host = a.config->hostname.c_str();
  if (::sethostname(host, std::strlen(host)) != 0) fail(err_fd, Step::kHostname, 0, errno);

  const auto& plan = *a.plan;
  for (std::size_t i = 0; i < plan.size(); ++i) {
    if (int err = apply_mount_op(plan[i]); err != 0)
      fail(err_fd, Step::kMount, static_cast<int>(i), err);
  }

  // Park the fds high first so placing them at 0..n-1 cannot clobber one another; the channel
  // goes right after them. No execve follows in init, so everything else (other requests' pipes
  // and sockets, the zygote's control socket) is closed for real, not just marked close-on-exec.
  int parked[7];
  const int n = a.nplace;
  for (int i = 0; i <= n + 1; ++i) {
    const int fd = i < n ? a.place[i] : i == n ? err_fd : a.init_fd;
    parked[i] = ::fcntl(fd, F_DUPFD_CLOEXEC, kParkFdBase);
    if (parked[i] < 0) fail(err_fd, Step::kFds, i, errno);
  }
  for (int i = 0; i < n; ++i) {
    if (::dup2(parked[i], i) != i) fail(err_fd, Step::kFds, 10 + i, errno);  // clears CLOEXEC
  }
  if (::dup3(parked[n], n, O_CLOEXEC) != n) fail(err_fd, Step::kFds, 15, errno);
  err_fd = n;
  if (::dup3(parked[n + 1], n + 1, O_CLOEXEC) != n + 1) fail(err_fd, Step::kFds, 16, errno);
  if (int rc = base::sys::raw_close_range(static_cast<unsigned>(n) + 2, ~0U, 0); rc != 0)
    fail(err_fd, Step::kFds, 21, -rc);

  if (::chdir("/tmp") != 0) fail(err_fd, Step::kChdir, 0, errno);
  ::umask(077);

  const Rlimits& l = *a.limits;
  const struct {
    int resource;
    rlim_t soft;
    rlim_t hard;
  } limits[] = {
      {RLIMIT_AS, l.address_space, l.address_space},
      // SIGXCPU at the soft limit, SIGKILL at the hard one: a backstop behind the deadline.
      {RLIMIT_CPU, l.cpu_seconds, l.cpu_seconds + 1},
      {RLIMIT_NPROC, l.processes, l.processes},
      {RLIMIT_NOFILE, l.open_files, l.open_files},
      {RLIMIT_FSIZE, l.file_size, l.file_size},
      {RLIMIT_CORE, 0, 0},
      {RLIMIT_MEMLOCK, 0, 0},
      {RLIMIT_MSGQUEUE, 0, 0},
  };
  for (std::size_t i = 0; i < sizeof limits / sizeof limits[0]; ++i) {
    const rlimit rl{limits[i].soft, limits[i].hard};
    if (::setrlimit(static_cast<__rlimit_resource>(limits[i].resource), &rl) != 0)
      fail(err_fd, Step::kRlimit, limits[i].resource, errno);
  }

  // Root in the user namespace keeps full capabilities across execve unless the bounding set is
  // empty (capabilities(7): P'(permitted) = F(permitted) & P(bounding) for root).
  for (int cap = 0; cap <= 63; ++cap) {
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
      fail(err_fd, Step::kCapabilities, cap, errno);
  }
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
    fail(err_fd, Step::kCapabilities, 64, errno);
  // A child that keeps running instead of execve keeps root's full permitted and effective sets
  // in its user namespace (execve is what would have emptied them): clear them explicitly.
  // Harmless before an execve, so done for both.
  __user_cap_header_struct cap_header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct no_caps[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capset, &cap_header, no_caps) != 0)
    fail(err_fd, Step::kCapabilities, 65, errno);

  // A session of its own: its own process group and, where the kernel groups sessions for the
  // scheduler (CONFIG_SCHED_AUTOGROUP), one CPU share for the whole sandbox however many
  // processes it runs. Before seccomp, which refuses setsid() to the script (a new session
  // would be a new share).
  if (::setsid() < 0) fail(err_fd, Step::kSession, 0, errno);

  // no_new_privs before seccomp: it lets an unprivileged task install a filter and makes
  // set-uid binaries inert (seccomp(2), PR_SET_NO_NEW_PRIVS).
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail(err_fd, Step::kNoNewPrivs, 0, errno);

  // Last before execve: after this, the filter also governs our own remaining syscalls.
  if (a.config->seccomp != nullptr) {
    if (int err = seccomp_policies::install(*a.config->seccomp); err != 0)
      fail(err_fd, Step::kSeccomp, 0, err);
  }
  return err_fd;
}

// This process becomes pysandbox-init (fd err_fd + 1) for a runner that exists already; if it
// cannot, the sandbox is unusable: its runner goes, and the failure is reported like any other
// step's.
[[noreturn]] void become_init(pid_t runner, int err_fd) noexcept {
  const int err = -exec_init(err_fd + 1, runner, err_fd, KillScope::kEverything);
  ::kill(runner, SIGKILL);
  fail(err_fd, Step::kInit, 0, err);
}

// Cold start: this process becomes pysandbox-init, which starts the runner (the interpreter)
// and then only reaps (jail/sandbox_init.hpp).
[[noreturn]] void child_main(const ChildArgs& a) noexcept {
  const int err_fd = child_steps(a);
  const int err = -exec_init_then_runner(err_fd + 1, err_fd, KillScope::kEverything,
                                         static_cast<std::int32_t>(Step::kExecve),
                                         a.config->executable.c_str(), a.argv, a.envp);
  fail(err_fd, Step::kInit, 0, err);
}

base::sys::Result<void> write_id_maps(int proc_fd, pid_t pid, uid_t uid, gid_t gid) {
  const std::string base = (proc_fd >= 0 ? "" : "/proc/") + std::to_string(pid);
  const int dir_fd = proc_fd >= 0 ? proc_fd : AT_FDCWD;
  const std::string umap = "0 " + std::to_string(uid) + " 1\n";
  const std::string gmap = "0 " + std::to_string(gid) + " 1\n";
  // The server writes the maps itself as a privileged process in the parent namespace, so
  // setgroups stays allowed for the child's one call that drops supplementary groups
  // (user_namespaces(7), "Interaction with system calls that change process UIDs or GIDs").
  if (int err = write_file(dir_fd, (base + "/uid_map").c_str(), umap.data(), umap.size()); err != 0)
    return base::sys::errno_code(err);
  if (int err = write_file(dir_fd, (base + "/gid_map").c_str(), gmap.data(), gmap.size()); err != 0)
    return base::sys::errno_code(err);
  return {};
}

const char* step_name(Step step) {
  switch (step) {
    case Step::kSync:
      return "sync";
    case Step::kIds:
      return "ids";
    case Step::kParentDeath:
      return "parent_death";
    case Step::kHostname:
      return "hostname";
    case Step::kSession:
      return "session";
    case Step::kRunner:
      return "runner";
    case Step::kInit:
      return "init";
    case Step::kMount:
      return "mount";
    case Step::kFds:
      return "fds";
    case Step::kChdir:
      return "chdir";
    case Step::kRlimit:
      return "rlimit";
    case Step::kCapabilities:
      return "capabilities";
    case Step::kNoNewPrivs:
      return "no_new_privs";
    case Step::kSeccomp:
      return "seccomp";
    case Step::kExecve:
      return "execve";
  }
  return "unknown";
}

}  // namespace

boost::system::result<Spawner> Spawner::create(JailConfig config) {
  if (config.executable.empty() || config.executable[0] != '/' || config.argv.empty())
    return std::make_error_code(std::errc::invalid_argument);
  auto plan = build_mount_plan(config.mounts);
  if (!plan) return plan.error();
  Spawner s;
  s.init_.reset(config.init_fd >= 0 ? ::fcntl(config.init_fd, F_DUPFD_CLOEXEC, 3)
                                    : ::open(config.init_path.c_str(), O_PATH | O_CLOEXEC));
  if (!s.init_) return base::sys::last_errno();
  s.config_ = std::move(config);
  s.plan_ = std::move(*plan);
  return s;
}

boost::system::result<Spawned> Spawner::spawn(const RunParams& params) const {
  return clone_sandbox(params.host_uid, params.host_gid, params.limits, params.cgroup_fd,
                       params.fds.data(), static_cast<int>(params.fds.size()), -1);
}

boost::system::result<Spawned> Spawner::fork_ready(const ReadyParams& params) const {
  if (params.channel_fd < 0 || params.handover_fd < 0 || params.null_fd < 0)
    return std::make_error_code(std::errc::bad_file_descriptor);
  // The cold layout (five fds, then the channel), so that the sandbox's init is the same
  // program with the same arguments whichever way it started.
  const int fds[5] = {params.null_fd, params.null_fd, params.null_fd, params.handover_fd,
                      params.null_fd};
  return clone_sandbox(params.host_uid, params.host_gid, params.limits, -1, fds, 5,
                       params.channel_fd);
}

boost::system::result<Spawned> Spawner::clone_sandbox(uid_t uid, gid_t gid, const Rlimits& limits,
                                                      int cgroup_fd, const int* place, int nplace,
                                                      int channel_fd) const {
  const bool ready = channel_fd >= 0;
  // execve's arrays, built before clone: the child must not allocate.
  std::vector<const char*> argv;
  for (const auto& arg : config_.argv) argv.push_back(arg.c_str());
  argv.push_back(nullptr);
  std::vector<const char*> envp;
  for (const auto& kv : config_.env) envp.push_back(kv.c_str());
  envp.push_back(nullptr);

  auto sync = base::sys::make_pipe();
  if (!sync) return sync.error();
  base::sys::Pipe errors;
  if (!ready) {
    auto made = base::sys::make_pipe();
    if (!made) return made.error();
    errors = std::move(*made);
  }

  ChildArgs args{&plan_,
                 &config_,
                 &limits,
                 argv.data(),
                 envp.data(),
                 sync->read.get(),
                 sync->write.get(),
                 ready ? -1 : errors.read.get(),
                 ready ? channel_fd : errors.write.get(),
                 place,
                 nplace,
                 init_.get()};
  // CLONE_PARENT for a zygote's sandbox: the zygote's parent (the server) becomes its parent, so
  // the server reaps it with its own pidfd and gets its rusage exactly as for a cold spawn
  // (clone(2): the child's exit signal is then the zygote's own, SIGCHLD).
  std::uint64_t flags = ready ? kNamespaceFlags | CLONE_PARENT : kNamespaceFlags;
  if (config_.inherit_network_namespace) flags &= ~static_cast<std::uint64_t>(CLONE_NEWNET);
  auto cloned = base::sys::clone3_pidfd(flags, cgroup_fd);
  if (!cloned) return cloned.error();
  if (cloned->pid == 0) {
    if (!ready) child_main(args);
    const int err_fd = child_steps(args);
    install_stop_handler();
    // Closed (close-on-exec) when init has become pysandbox-init: the runner waits for that, so
    // that nothing of it ever runs beside a copy of the zygote as its pid 1.
    int gate[2];
    if (::pipe2(gate, O_CLOEXEC) != 0) fail(err_fd, Step::kRunner, 1, errno);
    // The runner: a copy of this interpreter, which returns to the caller and waits there for
    // its run (fd 3); init stays behind and only reaps.
    auto runner = base::sys::clone_fork();
    if (!runner) fail(err_fd, Step::kRunner, 0, runner.error().value());
    if (*runner != 0) {
      ::close(gate[0]);
      for (int fd = 0; fd < err_fd; ++fd) ::close(fd);
      become_init(*runner, err_fd);
    }
    reset_stop_handler();
    ::close(gate[1]);
    ::close(err_fd + 1);  // init's program: the runner never execs, its CLOEXEC would not act
    char byte;
    while (::read(gate[0], &byte, 1) < 0 && errno == EINTR) {
    }
    ::close(gate[0]);
    // Those numbers were closed by the steps (and may be reused): forget them, do not close.
    (void)sync->read.release();
    (void)sync->write.release();
    Spawned in_runner;
    in_runner.pid = 0;
    return in_runner;
  }

  Spawned out;
  out.pid = cloned->pid;
  out.pidfd = std::move(cloned->pidfd);
  out.channel = std::move(errors.read);
  sync->read.reset();
  errors.write.reset();

  auto maps = write_id_maps(config_.host_proc_fd, out.pid, uid, gid);
  const char go = 1;
  if (!maps || ::write(sync->write.get(), &go, 1) != 1) {
    const auto err = maps ? base::sys::last_errno() : maps.error();
    if (ready) {
      // Not our child (CLONE_PARENT): its owner reaps it. Kill it before it runs anything and
      // report the step on the owner's channel, as the child itself would have.
      (void)base::sys::pidfd_send_signal(out.pidfd.get(), SIGKILL);
      ChannelRecord r;
      r.kind = static_cast<std::int32_t>(RecordKind::kSetupFailed);
      r.step = static_cast<std::int32_t>(Step::kIds);
      r.index = 3;
      r.err = err.value();
      write_record(channel_fd, r);
      return out;
    }
    // The child is still blocked before any setup: kill it and reap it here, so a failed spawn
    // leaves no process and no zombie behind.
    base::sys::kill_and_reap(out.pidfd.get());
    return err;
  }
  return out;
}

std::string Spawner::describe(const SetupFailure& failure) const {
  const auto step = static_cast<Step>(failure.step);
  std::string what = step_name(step);
  if (step == Step::kMount && failure.index >= 0 &&
      static_cast<std::size_t>(failure.index) < plan_.size()) {
    what += ": " + plan_[static_cast<std::size_t>(failure.index)].describe();
  } else {
    what += " #" + std::to_string(failure.index);
  }
  return what + ": " + std::strerror(failure.err);
}

}  // namespace pysandbox::jail
