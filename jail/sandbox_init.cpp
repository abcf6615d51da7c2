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

}  // namespace

void write_record(int channel, const ChannelRecord& record) noexcept {
  ssize_t ignored = ::write(channel, &record, sizeof record);
  (void)ignored;
}

void write_setup_failed(int channel, std::int32_t step, std::int32_t index,
                        std::int32_t err) noexcept {
  write_record(channel, setup_failed_record(step, index, err));
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

int exec_init(int init_fd, pid_t runner, int channel, KillScope scope) noexcept {
  const InitCommandLine line(runner, channel, scope);
  const char* envp[] = {nullptr};
  // The channel crosses into init's program; the runner never had to keep it.
  if (::fcntl(channel, F_SETFD, 0) != 0) return -errno;
  ::syscall(SYS_execveat, init_fd, "", line.argv, envp, AT_EMPTY_PATH);
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
