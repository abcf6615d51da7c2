// The project's raw system calls, each behind a wrapper returning boost::system::result.
// Everything that glibc does not wrap (clone3, pidfd_*, pivot_root, waitid with rusage) is here.
#pragma once

#include <signal.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <boost/system/result.hpp>
#include <cstdint>
#include <string_view>
#include <utility>

#include "base/sys/unique_fd.hpp"

namespace pysandbox::base::sys {

template <typename T>
using Result = boost::system::result<T>;

// errno as an error_code in the generic (POSIX) category.
boost::system::error_code errno_code(int err) noexcept;
inline boost::system::error_code last_errno() noexcept { return errno_code(errno); }

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};
// Both ends O_CLOEXEC; `flags` may add O_NONBLOCK (applies to both ends).
Result<Pipe> make_pipe(int flags = 0);

// A sealed, read-only-from-now memfd holding `data` at offset 0 (for the script and stdin: the
// child reads a regular file, so the parent never blocks writing into a pipe).
Result<UniqueFd> make_sealed_memfd(const char* name, std::string_view data);

Result<void> set_nonblocking(int fd);

struct CloneResult {
  pid_t pid = -1;  // 0 in the child
  UniqueFd pidfd;  // parent only
};
// clone3 with CLONE_PIDFD and `flags`; when cgroup_fd >= 0 adds CLONE_INTO_CGROUP. Like fork():
// the child continues on a copy of the caller's stack and may only call async-signal-safe code.
Result<CloneResult> clone3_pidfd(std::uint64_t flags, int cgroup_fd) noexcept;

Result<void> pidfd_send_signal(int pidfd, int sig) noexcept;

// pidfd_open(pid, 0), O_CLOEXEC like every pidfd.
Result<UniqueFd> pidfd_open(pid_t pid) noexcept;

struct ExitStatus {
  bool exited = false;  // false: still running (WNOHANG)
  int code = 0;         // exit status, when !signal
  int signal = 0;       // terminating signal, 0 if it exited
  bool core_dumped = false;
  rusage usage{};  // of the child and the descendants it reaped
};
// waitid(P_PIDFD, WEXITED|WNOHANG) with the kernel's rusage argument (glibc's wrapper lacks it).
Result<ExitStatus> reap_pidfd(int pidfd) noexcept;

// SIGKILL and a blocking reap: only for a child known to be about to die (error paths, probes).
void kill_and_reap(int pidfd) noexcept;

// --- Without clone3 and pidfds (gVisor): plain fork and reaping by pid. ---

// clone(SIGCHLD | `flags`) as a raw syscall, like fork() but without glibc's atfork handlers
// (the child may only call async-signal-safe code). `flags` may add CLONE_NEW* namespaces.
// Returns 0 in the child, the child's pid in the parent.
Result<pid_t> clone_fork(unsigned long flags = 0) noexcept;

// wait4(pid, WNOHANG) with rusage: exited == false while the child runs. Only for a pid this
// process owns: never -1 or a process group (that would steal another owner's exit).
Result<ExitStatus> wait4_nohang(pid_t pid) noexcept;

// Blocking wait4(pid) (EINTR retried): for a child known to be about to exit.
Result<ExitStatus> wait4_blocking(pid_t pid) noexcept;

// prctl(PR_SET_CHILD_SUBREAPER): orphaned descendants are reparented to this process instead of
// the system's init, so it can reap them (gVisor: EINVAL).
Result<void> become_child_subreaper() noexcept;

// Creates and releases a unix socket pair: the release runs the kernel's garbage collector of
// unreachable fds in flight when there are any (unix_release_sock() in net/unix/af_unix.c).
void release_unix_socket() noexcept;

// Async-signal-safe helpers for the child side (return 0 or -errno, never touch errno-based
// C++ machinery).
int raw_pivot_root(const char* new_root, const char* put_old) noexcept;
int raw_close_range(unsigned first, unsigned last, unsigned flags) noexcept;
int raw_statfs_flags(const char* path, unsigned long* flags) noexcept;
// Whether the pipe whose write end is `write_fd` still has a reader (poll(2) reports POLLERR on
// a write end once every read end is closed).
bool has_reader(int write_fd) noexcept;

}  // namespace pysandbox::base::sys
