#include "base/sys/syscalls.hpp"

#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pysandbox::base::sys {

boost::system::error_code errno_code(int err) noexcept {
  return {err, boost::system::generic_category()};
}

Result<Pipe> make_pipe(int flags) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | flags) != 0) return last_errno();
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

Result<UniqueFd> make_sealed_memfd(const char* name, std::string_view data) {
  UniqueFd fd(::memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) return last_errno();
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return last_errno();
    }
    done += static_cast<std::size_t>(n);
  }
  if (::lseek(fd.get(), 0, SEEK_SET) != 0) return last_errno();
  // Sealed so the sandbox cannot grow or rewrite what the parent handed over.
  if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0)
    return last_errno();
  return fd;
}

Result<void> set_nonblocking(int fd) {
  int fl = ::fcntl(fd, F_GETFL);
  if (fl < 0 || ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) return last_errno();
  return {};
}

Result<CloneResult> clone3_pidfd(std::uint64_t flags, int cgroup_fd) noexcept {
  int pidfd = -1;
  clone_args args{};
  args.flags = flags | CLONE_PIDFD;
  args.pidfd = reinterpret_cast<std::uint64_t>(&pidfd);
  // With CLONE_PARENT the kernel insists on 0 and uses the caller's own exit signal
  // (clone3_args_valid()).
  args.exit_signal = (flags & CLONE_PARENT) != 0 ? 0 : SIGCHLD;
  if (cgroup_fd >= 0) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = static_cast<std::uint64_t>(cgroup_fd);
  }
  long pid = ::syscall(SYS_clone3, &args, sizeof(args));
  if (pid < 0) return last_errno();
  CloneResult out;
  out.pid = static_cast<pid_t>(pid);
  if (pid > 0) out.pidfd.reset(pidfd);
  return out;
}

Result<UniqueFd> pidfd_open(pid_t pid) noexcept {
  long fd = ::syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) return last_errno();
  return UniqueFd(static_cast<int>(fd));
}

Result<void> pidfd_send_signal(int pidfd, int sig) noexcept {
  if (::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) != 0) return last_errno();
  return {};
}

Result<ExitStatus> reap_pidfd(int pidfd) noexcept {
  siginfo_t info{};
  ExitStatus st;
  for (;;) {
    long rc = ::syscall(SYS_waitid, P_PIDFD, pidfd, &info, WEXITED | WNOHANG, &st.usage);
    if (rc == 0) break;
    if (errno == EINTR) continue;
    return last_errno();
  }
  if (info.si_pid == 0) return st;  // not yet exited
  st.exited = true;
  switch (info.si_code) {
    case CLD_EXITED:
      st.code = info.si_status;
      break;
    case CLD_DUMPED:
      st.core_dumped = true;
      st.signal = info.si_status;
      break;
    default:
      st.signal = info.si_status;
      break;
  }
  return st;
}

void kill_and_reap(int pidfd) noexcept {
  ::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
  siginfo_t info{};
  while (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info, WEXITED) != 0 &&
         errno == EINTR) {
  }
}

namespace {

ExitStatus decode_wait_status(int status, const rusage& usage) noexcept {
  ExitStatus st;
  st.exited = true;
  st.usage = usage;
  if (WIFEXITED(status)) {
    st.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    st.signal = WTERMSIG(status);
    st.core_dumped = WCOREDUMP(status);
  }
  return st;
}

Result<ExitStatus> wait4_with(pid_t pid, int options) noexcept {
  int status = 0;
  rusage usage{};
  for (;;) {
    const pid_t rc = ::wait4(pid, &status, options, &usage);
    if (rc == pid) return decode_wait_status(status, usage);
    if (rc == 0) return ExitStatus{};  // WNOHANG: still running
    if (errno == EINTR) continue;
    return last_errno();
  }
}

}  // namespace

Result<pid_t> clone_fork(unsigned long flags) noexcept {
  // x86_64 argument order: flags, stack, parent_tid, child_tid, tls. A null stack means the
  // child runs on a copy of the caller's stack, as with fork().
  const long pid = ::syscall(SYS_clone, flags | SIGCHLD, nullptr, nullptr, nullptr, 0);
  if (pid < 0) return last_errno();
  return static_cast<pid_t>(pid);
}

Result<ExitStatus> wait4_nohang(pid_t pid) noexcept {
  if (pid <= 0) return errno_code(EINVAL);
  return wait4_with(pid, WNOHANG);
}

Result<ExitStatus> wait4_blocking(pid_t pid) noexcept {
  if (pid <= 0) return errno_code(EINVAL);
  return wait4_with(pid, 0);
}

Result<void> become_child_subreaper() noexcept {
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) return last_errno();
  return {};
}

int raw_pivot_root(const char* new_root, const char* put_old) noexcept {
  return ::syscall(SYS_pivot_root, new_root, put_old) == 0 ? 0 : -errno;
}

int raw_close_range(unsigned first, unsigned last, unsigned flags) noexcept {
  return ::syscall(SYS_close_range, first, last, flags) == 0 ? 0 : -errno;
}

void release_unix_socket() noexcept {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return;
  ::close(pair[0]);
  ::close(pair[1]);
}

bool has_reader(int write_fd) noexcept {
  struct pollfd p {
    write_fd, POLLOUT, 0
  };
  return ::poll(&p, 1, 0) >= 0 && (p.revents & POLLERR) == 0;
}

int raw_statfs_flags(const char* path, unsigned long* flags) noexcept {
  struct statfs sfs {};
  if (::syscall(SYS_statfs, path, &sfs) != 0) return -errno;
  *flags = static_cast<unsigned long>(sfs.f_flags);
  return 0;
}

}  // namespace pysandbox::base::sys
