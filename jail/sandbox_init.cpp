#include "jail/sandbox_init.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pysandbox::jail {

namespace {

volatile sig_atomic_t g_stop_requested = 0;

void on_stop(int) { g_stop_requested = 1; }

std::int64_t usec(const timeval& tv) {
  return static_cast<std::int64_t>(tv.tv_sec) * 1000000 + tv.tv_usec;
}

}  // namespace

void write_record(int channel, const ChannelRecord& record) noexcept {
  ssize_t ignored = ::write(channel, &record, sizeof record);
  (void)ignored;
}

void write_setup_failed(int channel, std::int32_t step, std::int32_t index,
                        std::int32_t err) noexcept {
  ChannelRecord failed;
  failed.kind = static_cast<std::int32_t>(RecordKind::kSetupFailed);
  failed.step = step;
  failed.index = index;
  failed.err = err;
  write_record(channel, failed);
}

void install_stop_handler() noexcept {
  struct sigaction sa {};
  sa.sa_handler = on_stop;
  sa.sa_flags = 0;
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(kStopSignal, &sa, nullptr);
}

void reset_stop_handler() noexcept {
  struct sigaction sa {};
  sa.sa_handler = SIG_DFL;
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(kStopSignal, &sa, nullptr);
}

pid_t exec_runner(const char* path, const char* const* argv, const char* const* envp, int channel,
                  std::int32_t exec_step) noexcept {
  const pid_t runner = ::vfork();
  if (runner == 0) {
    reset_stop_handler();
    ::execve(path, const_cast<char* const*>(argv), const_cast<char* const*>(envp));
    write_setup_failed(channel, exec_step, 0, errno);
    ::_exit(127);
  }
  return runner < 0 ? -errno : runner;
}

void run_init(pid_t runner, int channel, KillScope scope) noexcept {
  ChannelRecord done;
  done.kind = static_cast<std::int32_t>(RecordKind::kExited);
  done.status = W_EXITCODE(0, SIGKILL);  // unless the runner is seen exiting
  bool runner_reaped = false;
  while (!g_stop_requested) {
    int status = 0;
    const pid_t pid = ::wait4(-1, &status, __WALL, nullptr);
    if (pid == runner) {
      done.status = status;
      runner_reaped = true;
      break;
    }
    if (pid < 0 && errno != EINTR) break;  // ECHILD: nothing left at all
  }
  done.stopped = g_stop_requested ? 1 : 0;
  const auto report = [&] {
    struct rusage ru {};
    ::getrusage(RUSAGE_CHILDREN, &ru);
    done.user_usec = usec(ru.ru_utime);
    done.system_usec = usec(ru.ru_stime);
    done.max_rss_kib = ru.ru_maxrss;
    write_record(channel, done);
  };
  if (scope == KillScope::kGroup) {
    // The group includes init: report first, then take the group down, init with it.
    report();
    ::kill(0, SIGKILL);
    ::_exit(0);
  }
  // Everything else of the sandbox goes with its script: everything this process may signal,
  // which is the sandbox (its PID namespace, or its uid), never init itself.
  ::kill(-1, SIGKILL);
  for (;;) {
    int status = 0;
    const pid_t pid = ::wait4(-1, &status, __WALL, nullptr);
    if (pid == runner && !runner_reaped) {
      done.status = status;
      runner_reaped = true;
    }
    if (pid < 0 && errno != EINTR) break;
  }
  report();
  ::_exit(0);
}

namespace {

// Decimal digits of `value` into `out` (at least 12 bytes), NUL-terminated.
void format_int(long value, char* out) noexcept {
  char digits[24];
  int n = 0;
  const bool negative = value < 0;
  unsigned long v =
      negative ? 0ul - static_cast<unsigned long>(value) : static_cast<unsigned long>(value);
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  int at = 0;
  if (negative) out[at++] = '-';
  while (n > 0) out[at++] = digits[--n];
  out[at] = '\0';
}

}  // namespace

int exec_init(int init_fd, pid_t runner, int channel, KillScope scope) noexcept {
  char pid_text[24], channel_text[24], scope_text[24];
  format_int(runner, pid_text);
  format_int(channel, channel_text);
  format_int(static_cast<int>(scope), scope_text);
  const char* argv[] = {"pysandbox-init", pid_text, channel_text, scope_text, nullptr};
  const char* envp[] = {nullptr};
  // The channel crosses into init's program; the runner never had to keep it.
  if (::fcntl(channel, F_SETFD, 0) != 0) return -errno;
  ::syscall(SYS_execveat, init_fd, "", argv, envp, AT_EMPTY_PATH);
  return -errno;
}

int exec_init_then_runner(int init_fd, int channel, KillScope scope, std::int32_t exec_step,
                          const char* path, const char* const* argv,
                          const char* const* envp) noexcept {
  char channel_text[24], scope_text[24], step_text[24];
  format_int(channel, channel_text);
  format_int(static_cast<int>(scope), scope_text);
  format_int(exec_step, step_text);
  const char* args[6 + kMaxRunnerArgs + 1] = {"pysandbox-init", "-",       channel_text,
                                              scope_text,       step_text, path};
  int n = 6;
  for (int i = 0; argv[i] != nullptr; ++i) {
    if (i == kMaxRunnerArgs) return -E2BIG;
    args[n++] = argv[i];
  }
  args[n] = nullptr;
  if (::fcntl(channel, F_SETFD, 0) != 0) return -errno;
  ::syscall(SYS_execveat, init_fd, "", args, envp, AT_EMPTY_PATH);
  return -errno;
}

namespace {

long parse_long(const char* text) noexcept {
  long v = 0;
  bool negative = *text == '-';
  if (negative) ++text;
  while (*text >= '0' && *text <= '9') v = v * 10 + (*text++ - '0');
  return negative ? -v : v;
}

}  // namespace

int init_main(int argc, char** argv, char** envp) noexcept {
  // A stop request that came between execve and this line found no handler and was dropped
  // (pid_namespaces(7)); the server's backstop then kills the sandbox outright.
  install_stop_handler();
  ::prctl(PR_SET_NAME, "pysandbox-init", 0, 0, 0);
  // Same uid as the script, but not its to inspect or write (/proc/1/mem, /proc/1/environ):
  // ptrace access to a non-dumpable process needs CAP_SYS_PTRACE (ptrace(2)).
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (argc == 4) {
    run_init(static_cast<pid_t>(parse_long(argv[1])), static_cast<int>(parse_long(argv[2])),
             static_cast<KillScope>(parse_long(argv[3])));
  }
  if (argc < 7 || argv[1][0] != '-') return 2;
  const int channel = static_cast<int>(parse_long(argv[2]));
  const auto scope = static_cast<KillScope>(parse_long(argv[3]));
  const auto step = static_cast<std::int32_t>(parse_long(argv[4]));
  // The channel again close-on-exec: only init holds it once the runner runs.
  ::fcntl(channel, F_SETFD, FD_CLOEXEC);
  const pid_t runner = exec_runner(argv[5], argv + 6, envp, channel, step);
  if (runner < 0) {
    write_setup_failed(channel, step, 1, -runner);
    return 125;
  }
  // Only the runner keeps the run's fds: init must not hold a pipe open after it.
  for (int fd = 0; fd < channel; ++fd) ::close(fd);
  ChannelRecord running;
  running.kind = static_cast<std::int32_t>(RecordKind::kRunning);
  write_record(channel, running);
  // Once more, as a warm sandbox's init is: the script then sees the same pid 1 (its command
  // line too) however it was started. If that fails, this one does the job as well.
  char pid_text[24], channel_text[24], scope_text[24];
  format_int(runner, pid_text);
  format_int(channel, channel_text);
  format_int(static_cast<int>(scope), scope_text);
  const char* again[] = {"pysandbox-init", pid_text, channel_text, scope_text, nullptr};
  const char* no_env[] = {nullptr};
  if (::fcntl(channel, F_SETFD, 0) == 0) {
    ::execve("/proc/self/exe", const_cast<char* const*>(again), const_cast<char* const*>(no_env));
    ::fcntl(channel, F_SETFD, FD_CLOEXEC);
  }
  run_init(runner, channel, scope);
}

ChannelReport decode_channel(std::string_view bytes) {
  ChannelReport report;
  for (std::size_t at = 0; at + sizeof(ChannelRecord) <= bytes.size();
       at += sizeof(ChannelRecord)) {
    ChannelRecord r;
    std::memcpy(&r, bytes.data() + at, sizeof r);
    switch (static_cast<RecordKind>(r.kind)) {
      case RecordKind::kSetupFailed:
        if (!report.setup_failed) report.setup_failed = r;
        break;
      case RecordKind::kRunning:
        report.running = true;
        break;
      case RecordKind::kExited:
        if (!report.exited) report.exited = r;
        break;
    }
  }
  return report;
}

ChannelReport read_channel_blocking(int channel) {
  std::string bytes;
  char buf[4 * sizeof(ChannelRecord)];
  for (;;) {
    const ssize_t n = ::read(channel, buf, sizeof buf);
    if (n > 0) {
      if (bytes.size() < 16 * sizeof(ChannelRecord)) bytes.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  return decode_channel(bytes);
}

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char* abbrev = ::sigabbrev_np(WTERMSIG(status));
    return std::string("killed by ") + (abbrev != nullptr
                                            ? std::string("SIG") + abbrev
                                            : "signal " + std::to_string(WTERMSIG(status)));
  }
  return "wait status " + std::to_string(status);
}

}  // namespace pysandbox::jail
