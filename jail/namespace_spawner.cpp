#include "jail/namespace_spawner.hpp"

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

// Step::kIds's index for a uid/gid map the parent could not write (0..3 are the child's own
// calls, take_ids).
constexpr int kIdMapsIndex = 4;

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

// Everything from here to the end of the sandbox's steps runs in the cloned child before execve:
// async-signal-safe only (jail/child_steps.hpp), no allocation, no locks, no exceptions.

// Until the parent has written uid_map/gid_map we have no valid ids in our namespace.
void await_id_maps(int err_fd, int sync_read) noexcept {
  char go = 0;
  if (::read(sync_read, &go, 1) != 1) fail_step(err_fd, Step::kSync, 0, errno ? errno : EPIPE);
  ::close(sync_read);
}

void mount_root(int err_fd, const std::vector<MountOp>& plan) noexcept {
  for (std::size_t i = 0; i < plan.size(); ++i) {
    if (int err = apply_mount_op(plan[i]); err != 0)
      fail_step(err_fd, Step::kMount, static_cast<int>(i), err);
  }
}

void enter_tmp(int err_fd) noexcept {
  if (::chdir("/tmp") != 0) fail_step(err_fd, Step::kChdir, 0, errno);
  ::umask(077);
}

// Root in the user namespace keeps full capabilities across execve unless the bounding set is
// empty (capabilities(7): P'(permitted) = F(permitted) & P(bounding) for root).
void drop_capabilities(int err_fd) noexcept {
  drop_bounding_set(err_fd, /*without_setpcap_ok=*/false);
  clear_ambient_capabilities(err_fd);
  // A child that keeps running instead of execve keeps root's full permitted and effective sets
  // in its user namespace (execve is what would have emptied them): clear them explicitly.
  // Harmless before an execve, so done for both.
  __user_cap_header_struct cap_header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct no_caps[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capset, &cap_header, no_caps) != 0)
    fail_step(err_fd, Step::kCapabilities, 65, errno);
}

// The sandbox's steps, in order; seccomp last. Returns the fd the setup-error channel ended up
// on.
int sandbox_steps(const ChildArgs& a) noexcept {
  const bool forked_interpreter = a.err_read < 0;
  ::close(a.sync_write);
  if (!forked_interpreter) ::close(a.err_read);
  reset_signals(a.err_write, /*keep_dispositions=*/forked_interpreter);
  await_id_maps(a.err_write, a.sync_read);
  // Root of the new user namespace = the unprivileged host uid.
  switch_ids(a.err_write, 0, 0);
  die_with_parent(a.err_write);
  set_hostname(a.err_write, a.config->hostname.c_str(), a.config->hostname.size());
  mount_root(a.err_write, *a.plan);
  const int err_fd = place_fds(a.place, a.nplace, a.err_write, a.init_fd);
  enter_tmp(err_fd);
  // What no script needs: core dumps, locked memory, POSIX message queues.
  const RlimitSetting none[] = {
      {RLIMIT_CORE, 0, 0}, {RLIMIT_MEMLOCK, 0, 0}, {RLIMIT_MSGQUEUE, 0, 0}};
  set_rlimits(err_fd, *a.limits, none, sizeof none / sizeof none[0]);
  drop_capabilities(err_fd);
  // Before seccomp, which refuses setsid() to the script (a new session would be a new CPU
  // share).
  new_session(err_fd);
  lock_down(err_fd, a.config->seccomp);
  return err_fd;
}

// This process becomes pysandbox-init (fd err_fd + 1) for a runner that exists already; if it
// cannot, the sandbox is unusable: its runner goes, and the failure is reported like any other
// step's.
[[noreturn]] void become_init(pid_t runner, int err_fd) noexcept {
  const int err = -exec_init(err_fd + 1, runner, err_fd, KillScope::kEverything);
  ::kill(runner, SIGKILL);
  fail_step(err_fd, Step::kInit, 0, err);
}

// Cold start: this process becomes pysandbox-init, which starts the runner (the interpreter)
// and then only reaps (jail/sandbox_init.hpp).
[[noreturn]] void child_main(const ChildArgs& a) noexcept {
  const int err_fd = sandbox_steps(a);
  const int err = -exec_init_then_runner(err_fd + 1, err_fd, KillScope::kEverything,
                                         static_cast<std::int32_t>(Step::kExecve),
                                         a.config->executable.c_str(), a.argv, a.envp);
  fail_step(err_fd, Step::kInit, 0, err);
}

// Warm start, after the steps: this process stays behind as init, and a copy of this interpreter
// (the runner) returns to the caller, sandboxed, once init has become pysandbox-init.
void split_off_runner(int err_fd) noexcept {
  install_stop_handler();
  // Closed (close-on-exec) when init has become pysandbox-init: the runner waits for that, so
  // that nothing of it ever runs beside a copy of the zygote as its pid 1.
  int gate[2];
  if (::pipe2(gate, O_CLOEXEC) != 0) fail_step(err_fd, Step::kRunner, 1, errno);
  auto runner = base::sys::clone_fork();
  if (!runner) fail_step(err_fd, Step::kRunner, 0, runner.error().value());
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
}

int write_file(int dir_fd, const char* path, const char* data, std::size_t len) noexcept {
  int fd = ::openat(dir_fd, path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  ssize_t n = ::write(fd, data, len);
  int err = n == static_cast<ssize_t>(len) ? 0 : (n < 0 ? errno : EIO);
  ::close(fd);
  return err;
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

}  // namespace

boost::system::result<NamespaceSpawner> NamespaceSpawner::create(JailConfig config) {
  if (config.executable.empty() || config.executable[0] != '/' || config.argv.empty())
    return std::make_error_code(std::errc::invalid_argument);
  auto plan = build_mount_plan(config.mounts);
  if (!plan) return plan.error();
  NamespaceSpawner s;
  s.init_.reset(config.init_fd >= 0 ? ::fcntl(config.init_fd, F_DUPFD_CLOEXEC, 3)
                                    : ::open(config.init_path.c_str(), O_PATH | O_CLOEXEC));
  if (!s.init_) return base::sys::last_errno();
  s.config_ = std::move(config);
  s.plan_ = std::move(*plan);
  return s;
}

boost::system::result<Spawned> NamespaceSpawner::spawn(const RunParams& params) const {
  const auto fds = params.fds.in_order();
  return clone_sandbox(params.host_uid, params.host_gid, params.limits, params.cgroup_fd,
                       fds.data(), kRunFdCount, -1);
}

boost::system::result<Spawned> NamespaceSpawner::fork_ready(const ReadyParams& params) const {
  if (params.channel_fd < 0 || params.handover_fd < 0 || params.null_fd < 0)
    return std::make_error_code(std::errc::bad_file_descriptor);
  // The cold layout (five fds, then the channel), so that the sandbox's init is the same
  // program with the same arguments whichever way it started.
  RunFds placeholders = RunFds::all(params.null_fd);
  placeholders.script = params.handover_fd;
  const auto fds = placeholders.in_order();
  return clone_sandbox(params.host_uid, params.host_gid, params.limits, -1, fds.data(), kRunFdCount,
                       params.channel_fd);
}

boost::system::result<Spawned> NamespaceSpawner::clone_sandbox(uid_t uid, gid_t gid,
                                                               const Rlimits& limits, int cgroup_fd,
                                                               const int* place, int nplace,
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
    split_off_runner(sandbox_steps(args));
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

  if (auto released = release(out, uid, gid, sync->write.get(), channel_fd); !released)
    return released.error();
  return out;
}

// The child waits for its uid/gid maps; without them it never runs a step. The caller of
// fork_ready (`channel_fd` >= 0) learns of a failure as of any step's, on its channel.
boost::system::result<void> NamespaceSpawner::release(const Spawned& child, uid_t uid, gid_t gid,
                                                      int sync_write, int channel_fd) const {
  auto maps = write_id_maps(config_.host_proc_fd, child.pid, uid, gid);
  const char go = 1;
  if (maps && ::write(sync_write, &go, 1) == 1) return {};
  const auto err = maps ? base::sys::last_errno() : maps.error();
  if (channel_fd >= 0) {
    // Not our child (CLONE_PARENT): its owner reaps it. Kill it before it runs anything and
    // report the step on the owner's channel, as the child itself would have.
    (void)base::sys::pidfd_send_signal(child.pidfd.get(), SIGKILL);
    write_setup_failed(channel_fd, static_cast<std::int32_t>(Step::kIds), kIdMapsIndex,
                       err.value());
    return {};
  }
  // The child is still blocked before any setup: kill it and reap it here, so a failed spawn
  // leaves no process and no zombie behind.
  base::sys::kill_and_reap(child.pidfd.get());
  return err;
}

std::string NamespaceSpawner::describe(const SetupFailure& failure) const {
  const auto i = static_cast<std::size_t>(failure.index);
  if (static_cast<Step>(failure.step) == Step::kMount && failure.index >= 0 && i < plan_.size())
    return jail::describe(failure, plan_[i].describe());
  return jail::describe(failure);
}

}  // namespace pysandbox::jail
