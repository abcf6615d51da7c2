#include "jail/child_steps.hpp"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "base/sys/syscalls.hpp"
#include "jail/sandbox_init.hpp"
#include "seccomp_policies/bpf_program.hpp"

namespace pysandbox::jail {

namespace {

// Where the child parks its fds before placing them at 0..n+1, above anything the server is
// likely to hold.
constexpr int kParkFdBase = 1000;
// Last resort when close_range cannot take a range at all: close fds one by one up to here (the
// server itself never gets near it).
constexpr int kCloseLoopEnd = 65536;

// Closes everything from `first` up. gVisor refuses close_range with an upper bound past its fd
// table (EINVAL for ~0U), so retry with the fd limit, then one fd at a time.
void close_from(unsigned first) noexcept {
  if (base::sys::raw_close_range(first, ~0U, 0) == 0) return;
  rlimit rl{};
  unsigned last = kCloseLoopEnd;
  if (::syscall(SYS_getrlimit, RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
      rl.rlim_max > first && rl.rlim_max < static_cast<rlim_t>(kCloseLoopEnd)) {
    last = static_cast<unsigned>(rl.rlim_max);
  }
  if (base::sys::raw_close_range(first, last - 1, 0) == 0) return;
  for (unsigned fd = first; fd < last; ++fd) ::close(static_cast<int>(fd));
}

}  // namespace

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
    case Step::kSession:
      return "session";
    case Step::kRunner:
      return "runner";
    case Step::kInit:
      return "init";
    case Step::kSignals:
      return "signals";
  }
  return "unknown";
}

std::string describe(const SetupFailure& failure, std::string_view operation) {
  std::string what = step_name(static_cast<Step>(failure.step));
  if (!operation.empty()) {
    what += ": ";
    what += operation;
  } else {
    what += " #" + std::to_string(failure.index);
  }
  return what + ": " + std::strerror(failure.err);
}

void fail_step(int channel, Step step, int index, int err) noexcept {
  write_setup_failed(channel, static_cast<std::int32_t>(step), index, err);
  ::_exit(kSetupFailedExit);
}

void reset_signals(int channel, bool keep_dispositions) noexcept {
  if (!keep_dispositions) {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
  }
  sigset_t none;
  ::sigemptyset(&none);
  if (::sigprocmask(SIG_SETMASK, &none, nullptr) != 0) fail_step(channel, Step::kSignals, 0, errno);
}

void new_session(int channel) noexcept {
  if (::setsid() < 0) fail_step(channel, Step::kSession, 0, errno);
}

void set_hostname(int channel, const char* name, std::size_t length) noexcept {
  if (::sethostname(name, length) != 0) fail_step(channel, Step::kHostname, 0, errno);
}

int take_ids(uid_t uid, gid_t gid, int& index) noexcept {
  index = 0;
  if (::syscall(SYS_setgroups, 0, nullptr) != 0) return errno;
  index = 1;
  if (::syscall(SYS_setresgid, gid, gid, gid) != 0) return errno;
  index = 2;
  if (::syscall(SYS_setresuid, uid, uid, uid) != 0) return errno;
  index = 3;
  uid_t r = 0, e = 0, s = 0;
  if (::syscall(SYS_getresuid, &r, &e, &s) != 0) return errno;
  if (r != uid || e != uid || s != uid) return EPERM;
  return 0;
}

void switch_ids(int channel, uid_t uid, gid_t gid) noexcept {
  int index = 0;
  if (int err = take_ids(uid, gid, index); err != 0) fail_step(channel, Step::kIds, index, err);
}

void die_with_parent(int channel) noexcept {
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail_step(channel, Step::kParentDeath, 0, errno);
  if (!base::sys::has_reader(channel)) ::_exit(kSetupFailedExit);
}

int place_fds(const int* fds, int n, int channel, int init_fd) noexcept {
  int parked[kMaxPlacedFds + 2];
  for (int i = 0; i <= n + 1; ++i) {
    const int fd = i < n ? fds[i] : i == n ? channel : init_fd;
    parked[i] = ::fcntl(fd, F_DUPFD_CLOEXEC, kParkFdBase);
    if (parked[i] < 0) fail_step(channel, Step::kFds, i, errno);
  }
  // From here the channel's own number may be taken by a placed fd: report on its parked copy.
  for (int i = 0; i < n; ++i) {
    if (::dup2(parked[i], i) != i) fail_step(parked[n], Step::kFds, 10 + i, errno);  // no CLOEXEC
  }
  if (::dup3(parked[n], n, O_CLOEXEC) != n) fail_step(parked[n], Step::kFds, 15, errno);
  channel = n;
  if (::dup3(parked[n + 1], n + 1, O_CLOEXEC) != n + 1) fail_step(channel, Step::kFds, 16, errno);
  close_from(static_cast<unsigned>(n) + 2);
  return channel;
}

int apply_rlimits(const Rlimits& run, const RlimitSetting* extra, std::size_t nextra,
                  int& resource) noexcept {
  const RlimitSetting own[] = {
      {RLIMIT_AS, run.address_space, run.address_space},
      // SIGXCPU at the soft limit, SIGKILL at the hard one: a backstop behind the deadline.
      {RLIMIT_CPU, run.cpu_seconds, run.cpu_seconds + 1},
      // Per uid, system-wide: exact for a sandbox with a uid of its own (a user namespace's
      // root maps to a slot's host uid; an rlimit sandbox takes the slot's uid) because the
      // previous run's processes are all gone before the slot is used again.
      {RLIMIT_NPROC, run.processes, run.processes},
      {RLIMIT_NOFILE, run.open_files, run.open_files},
      {RLIMIT_FSIZE, run.file_size, run.file_size},
  };
  const std::size_t nown = sizeof own / sizeof own[0];
  for (std::size_t i = 0; i < nown + nextra; ++i) {
    const RlimitSetting& l = i < nown ? own[i] : extra[i - nown];
    const rlimit rl{l.soft, l.hard};
    if (::syscall(SYS_setrlimit, l.resource, &rl) != 0 && l.required) {
      resource = l.resource;
      return errno;
    }
  }
  return 0;
}

void set_rlimits(int channel, const Rlimits& run, const RlimitSetting* extra,
                 std::size_t nextra) noexcept {
  int resource = 0;
  if (int err = apply_rlimits(run, extra, nextra, resource); err != 0)
    fail_step(channel, Step::kRlimit, resource, err);
}

void drop_bounding_set(int channel, bool without_setpcap_ok) noexcept {
  for (int cap = 0; cap <= 63; ++cap) {
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0 || errno == EINVAL) continue;
    if (without_setpcap_ok && errno == EPERM) break;
    fail_step(channel, Step::kCapabilities, cap, errno);
  }
}

void clear_ambient_capabilities(int channel) noexcept {
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
    fail_step(channel, Step::kCapabilities, 64, errno);
}

void lock_down(int channel, const seccomp_policies::BpfProgram* seccomp) noexcept {
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    fail_step(channel, Step::kNoNewPrivs, 0, errno);
  if (seccomp != nullptr) {
    if (int err = seccomp_policies::install(*seccomp); err != 0)
      fail_step(channel, Step::kSeccomp, 0, err);
  }
}

}  // namespace pysandbox::jail
