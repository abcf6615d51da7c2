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

// What init may kill when the runner is done: kEverything = kill(-1), every process it may
// signal, which is the sandbox when the sandbox is a PID namespace or a uid of its own; kGroup =
// its process group only (rlimit mode without either: kill(-1) would reach the server).
enum class KillScope : int { kEverything = 1, kGroup = 2 };

// Cold start: the most arguments the runner may have (init's argv holds them after its own).
inline constexpr int kMaxRunnerArgs = 24;

}  // namespace pysandbox::jail
