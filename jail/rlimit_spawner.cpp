#include "jail/rlimit_spawner.hpp"

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
#include <string>
#include <string_view>

#include "base/sys/block_signals.hpp"
#include "base/sys/syscalls.hpp"
#include "jail/sandbox_init.hpp"
#include "jail/scratch_dir.hpp"
#include "seccomp_policies/bpf_program.hpp"

namespace pysandbox::jail {

namespace {

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

// Everything from here to execve runs in the forked child: async-signal-safe only
// (jail/child_steps.hpp), no allocation, no locks, no exceptions.

// Step::kMount's index 0: make-rprivate, 1: /proc, 2 + i: tmpfs_dirs[i].
void mount_own_views(int err_fd, const RlimitNamespaces& ns, const char* tmpfs_data) noexcept {
  if (!(ns.clone_flags & CLONE_NEWNS)) return;
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 &&
      !(ns.tolerate_private_failure && errno == EINVAL))
    fail_step(err_fd, Step::kMount, 0, errno);
  // Our own PID namespace's processes only: the server and other runs disappear from /proc.
  if (ns.mount_proc &&
      ::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
    fail_step(err_fd, Step::kMount, 1, errno);
  for (std::size_t i = 0; i < ns.tmpfs_dirs.size(); ++i) {
    if (::mount("tmpfs", ns.tmpfs_dirs[i].c_str(), "tmpfs", MS_NOSUID | MS_NODEV, tmpfs_data) != 0)
      fail_step(err_fd, Step::kMount, 2 + static_cast<int>(i), errno);
  }
}

void set_limits(int err_fd, const RlimitRunParams& p) noexcept {
  const RlimitSetting extra[] = {
      {RLIMIT_STACK, p.stack_bytes, p.stack_bytes},
      {RLIMIT_CORE, 0, 0},
      // Secondary: gVisor refuses to set these (EPERM); it has no mlock or POSIX message queue
      // limits to protect anyway. probe::rlimits() reports which ones hold.
      {RLIMIT_MEMLOCK, 0, 0, /*required=*/false},
      {RLIMIT_MSGQUEUE, 0, 0, /*required=*/false},
  };
  set_rlimits(err_fd, p.limits, extra, sizeof extra / sizeof extra[0]);
}

// The run's own uid and gid, without any capability. The bounding set only matters for file
// capabilities at execve (no_new_privs already makes those inert); dropping it needs
// CAP_SETPCAP, so before the uid change, and a server without it (GKE Sandbox keeps only SETUID,
// SETGID and KILL) does without. Leaving uid 0 for a non-zero real, effective and saved uid
// clears every capability set.
void become_run_uid(int err_fd, const RlimitRunParams& p) noexcept {
  if (p.switch_ids) {
    drop_bounding_set(err_fd, /*without_setpcap_ok=*/true);
    switch_ids(err_fd, p.uid, p.gid);
  }
  clear_ambient_capabilities(err_fd);
}

// As the run's uid: its directory is its own from the start.
void enter_cwd(int err_fd, const RlimitRunParams& p) noexcept {
  if (p.create_cwd && ::mkdir(p.cwd.c_str(), 0700) != 0) fail_step(err_fd, Step::kChdir, 1, errno);
  if (::chdir(p.cwd.c_str()) != 0) fail_step(err_fd, Step::kChdir, 0, errno);
}

// After the id change, which clears the parent-death signal. Without a PID namespace of our own,
// getppid() also tells whether the server already went (in one, the parent is outside it).
void watch_parent(int err_fd, const RlimitNamespaces& ns, pid_t parent) noexcept {
  die_with_parent(err_fd);
  if (!(ns.clone_flags & CLONE_NEWPID) && ::getppid() != parent)
    fail_step(err_fd, Step::kParentDeath, 1, ESRCH);
}

// init (jail/sandbox_init.hpp): starts the runner, then only reaps. Without a PID namespace of
// its own it asks for the run's orphans (gVisor refuses; they then go to the server, which is a
// subreaper or pid 1 itself).
[[noreturn]] void become_init(int err_fd, const ChildArgs& a) noexcept {
  const RlimitNamespaces& ns = a.config->namespaces;
  if (!(ns.clone_flags & CLONE_NEWPID)) (void)::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  // kill(-1) reaches the run alone in its own PID namespace or as its own uid; otherwise (the
  // server is not root) it would reach the server: then only the run's process group.
  const KillScope scope = (ns.clone_flags & CLONE_NEWPID) != 0 || a.params->switch_ids
                              ? KillScope::kEverything
                              : KillScope::kGroup;
  const int err =
      -exec_init_then_runner(err_fd + 1, err_fd, scope, static_cast<std::int32_t>(Step::kExecve),
                             a.config->executable.c_str(), a.argv, a.envp);
  fail_step(err_fd, Step::kInit, 0, err);
}

// The run's steps, in order; seccomp last, then init.
[[noreturn]] void child_main(const ChildArgs& a) noexcept {
  const RlimitRunParams& p = *a.params;
  const RlimitNamespaces& ns = a.config->namespaces;
  // The server's copy must be the only read end: its absence is how we learn the server died.
  ::close(a.err_read);
  // The parent blocked everything around the clone, so no handler of the server runs in here.
  reset_signals(a.err_write, /*keep_dispositions=*/false);
  new_session(a.err_write);
  if (ns.clone_flags & CLONE_NEWUTS)
    set_hostname(a.err_write, ns.hostname.c_str(), ns.hostname.size());
  mount_own_views(a.err_write, ns, a.tmpfs_data);
  const auto fds = p.fds.in_order();  // on the stack: no allocation in the child
  const int err_fd = place_fds(fds.data(), kRunFdCount, a.err_write, a.init_fd);
  ::umask(077);
  set_limits(err_fd, p);
  become_run_uid(err_fd, p);
  enter_cwd(err_fd, p);
  watch_parent(err_fd, ns, a.parent);
  lock_down(err_fd, a.config->seccomp);
  become_init(err_fd, a);
}

std::string_view env_key(std::string_view kv) { return kv.substr(0, kv.find('=')); }

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

std::string RlimitSpawner::describe(const SetupFailure& failure) { return jail::describe(failure); }

}  // namespace pysandbox::jail
