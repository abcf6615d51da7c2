// What a sandbox's init (pysandbox-init, jail/init/init.cpp) and the server say to each other:
// the channel's records, the stop signal, what init may kill, and init's command line. Types and
// constants only: the init program is built without a C library (jail/init/sys.hpp) and includes
// this, and nothing else of the jail. The channel itself is described in jail/sandbox_init.hpp.
#pragma once

#include <csignal>
#include <cstdint>

namespace pysandbox::jail {

enum class RecordKind : std::int32_t {
  kSetupFailed = 1,  // a setup step failed; the sandbox never ran anything of the script's
  kRunning = 2,      // the runner is up (cold: it execve'd; warm: it waits for its run)
  kExited = 3,       // the runner exited; every other process was killed and reaped
};

struct ChannelRecord {
  std::int32_t kind = 0;     // RecordKind
  std::int32_t step = 0;     // kSetupFailed: the spawner's step
  std::int32_t index = 0;    // kSetupFailed: which operation of the step
  std::int32_t err = 0;      // kSetupFailed: errno
  std::int32_t status = 0;   // kExited: the runner's wait status (wait(2) encoding)
  std::int32_t stopped = 0;  // kExited: init ended the sandbox because the server asked it to
  // kExited: what every process init reaped used (getrusage(RUSAGE_CHILDREN)).
  std::int64_t user_usec = 0;
  std::int64_t system_usec = 0;
  std::int64_t max_rss_kib = 0;
};
static_assert(sizeof(ChannelRecord) == 48);

// The signal that asks init to stop the sandbox: it kills every other process, reaps them (so
// their usage still counts) and reports. Sent from outside the PID namespace, it reaches init
// only because init handles it (pid_namespaces(7)).
inline constexpr int kStopSignal = SIGTERM;

// A kSetupFailed record: the spawner's `step`, which operation of it (`index`), errno `err`.
inline ChannelRecord setup_failed_record(std::int32_t step, std::int32_t index,
                                         std::int32_t err) noexcept {
  ChannelRecord failed;
  failed.kind = static_cast<std::int32_t>(RecordKind::kSetupFailed);
  failed.step = step;
  failed.index = index;
  failed.err = err;
  return failed;
}

// What init may kill when the runner is done: kEverything = kill(-1), every process it may
// signal, which is the sandbox when the sandbox is a PID namespace or a uid of its own; kGroup =
// its process group only (rlimit mode without either: kill(-1) would reach the server).
enum class KillScope : int { kEverything = 1, kGroup = 2 };

// Cold start: the most arguments the runner may have (init's argv holds them after its own).
inline constexpr int kMaxRunnerArgs = 24;

// Decimal digits of `value` into `out` (at least 24 bytes), NUL-terminated. Async-signal-safe.
inline void format_int(long value, char* out) noexcept {
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

// init's command line for a runner that exists already, "pysandbox-init RUNNER CHANNEL SCOPE":
// what the warm path execs, and what a cold start's init execs once more after starting its
// runner (so that the script sees the same pid 1 either way). Filled in place (argv points into
// the object); async-signal-safe.
struct InitCommandLine {
  char runner[24];
  char channel[24];
  char scope[24];
  const char* argv[5];

  InitCommandLine(long runner_pid, int channel_fd, KillScope kill_scope) noexcept {
    format_int(runner_pid, runner);
    format_int(channel_fd, channel);
    format_int(static_cast<int>(kill_scope), scope);
    argv[0] = "pysandbox-init";
    argv[1] = runner;
    argv[2] = channel;
    argv[3] = scope;
    argv[4] = nullptr;
  }
  InitCommandLine(const InitCommandLine&) = delete;
  InitCommandLine& operator=(const InitCommandLine&) = delete;
};

}  // namespace pysandbox::jail
