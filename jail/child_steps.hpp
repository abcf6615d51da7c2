// The setup steps both spawners (jail::NamespaceSpawner, jail::RlimitSpawner) run in a new
// sandbox's first process between the fork and execve, each under one name, and how the server
// reads a step's failure back.
//
// Everything declared noexcept here runs in a child forked from a possibly multi-threaded
// server: raw syscalls and async-signal-safe libc only, no allocation, no locks (glibc's own
// state was copied mid-use), no exceptions. id changes go through syscall(2) directly because
// glibc's setxid wrappers would try to signal the parent's other threads. A step that fails
// reports itself on the sandbox's channel (jail/sandbox_init.hpp) and exits: it never returns.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pysandbox::seccomp_policies {
class BpfProgram;
}

namespace pysandbox::jail {

// What a run may use.
struct Rlimits {
  std::uint64_t address_space = 256ull << 20;
  std::uint64_t cpu_seconds = 6;
  std::uint64_t processes = 64;
  std::uint64_t open_files = 256;
  std::uint64_t file_size = 64ull << 20;
};

// Which step failed, as the channel's kSetupFailed record carries it. Numbers only travel
// between this build's own processes.
enum class Step : std::int32_t {
  kSync = 1,
  kIds,
  kParentDeath,
  kHostname,
  kMount,
  kFds,
  kChdir,
  kRlimit,
  kCapabilities,
  kNoNewPrivs,
  kSeccomp,
  kExecve,
  kSession,
  kRunner,
  kInit,
  kSignals,
};

// "mount", "ids", ...: a step's name in the log.
const char* step_name(Step step);

// A setup step that failed, as a channel record reports it.
struct SetupFailure {
  std::int32_t step = 0;   // Step
  std::int32_t index = 0;  // which operation of the step (a mount plan index for kMount)
  std::int32_t err = 0;    // errno
};

// "ids #2: Operation not permitted", or with `operation` in place of the index ("mount: bind
// /usr -> /tmp/usr (ro): Operation not permitted"), for the log.
std::string describe(const SetupFailure& failure, std::string_view operation = {});

// The exit status of a sandbox's first process whose setup failed.
inline constexpr int kSetupFailedExit = 125;

// Reports `step` (`index`, errno `err`) on `channel` and exits with kSetupFailedExit.
[[noreturn]] void fail_step(int channel, Step step, int index, int err) noexcept;

// ---- The steps, in the order a child may run them; each fails the child on `channel`. ----

// Handlers do not survive execve but ignored signals and the mask do: every signal back to its
// default action (unless `keep_dispositions`: a forked interpreter that never execs keeps the
// ones a fresh one would install), and none blocked.
void reset_signals(int channel, bool keep_dispositions) noexcept;

// Its own session and process group: the sandbox can be killed as a group, reaches no terminal
// of the server's and, where the kernel groups sessions for the scheduler
// (CONFIG_SCHED_AUTOGROUP), gets one CPU share however many processes it runs.
void new_session(int channel) noexcept;

// In a UTS namespace of its own.
void set_hostname(int channel, const char* name, std::size_t length) noexcept;

// No supplementary groups (root's would still grant group access to host files), then gid and
// uid (real, effective and saved), checked. Returns 0, or the errno of the call that failed
// with its number (0..3) in `index`.
int take_ids(uid_t uid, gid_t gid, int& index) noexcept;
// take_ids as a step (Step::kIds).
void switch_ids(int channel, uid_t uid, gid_t gid) noexcept;

// If the server dies, its sandbox dies with it. After any id change: the kernel clears the
// parent-death signal whenever the effective uid changes. The server may have died before:
// it holds the only read end of `channel`, so a channel without readers means it is gone
// (getppid() cannot tell from inside a PID namespace); then the child exits silently.
void die_with_parent(int channel) noexcept;

// Parks `fds[0..n-1]`, the channel and pysandbox-init (`init_fd`) high first, so that placing
// them cannot clobber one another, then places `fds` at 0..n-1 (inheritable), the channel at n
// and init at n + 1 (both close-on-exec), and closes every other fd for real: init does not
// execve, and other requests' pipes and sockets must not stay open in it. Returns the channel's
// new number, n. At most kMaxPlacedFds fds.
inline constexpr int kMaxPlacedFds = 5;
int place_fds(const int* fds, int n, int channel, int init_fd) noexcept;

// The limits of a run, in the order they are set: a run's own (`run`), then `extra`.
struct RlimitSetting {
  int resource;
  rlim_t soft;
  rlim_t hard;
  // false: one a sandbox goes without where the kernel refuses it (gVisor refuses
  // RLIMIT_MEMLOCK and RLIMIT_MSGQUEUE, and has neither to protect).
  bool required = true;
};
// Sets the run's limits, then `extra[0..nextra-1]`: Step::kRlimit with the resource as index
// when a required one fails. Also after seccomp (a zygote's runner lowers its limits there).
void set_rlimits(int channel, const Rlimits& run, const RlimitSetting* extra = nullptr,
                 std::size_t nextra = 0) noexcept;
// The same, for a caller without a channel: 0, or the errno of the first required one that
// failed (its resource in `resource`).
int apply_rlimits(const Rlimits& run, const RlimitSetting* extra, std::size_t nextra,
                  int& resource) noexcept;

// Empties the capability bounding set, which is what execve keeps file capabilities within.
// Dropping needs CAP_SETPCAP: with `without_setpcap_ok`, a server that lacks it stops at the
// first EPERM instead of failing.
void drop_bounding_set(int channel, bool without_setpcap_ok) noexcept;
void clear_ambient_capabilities(int channel) noexcept;

// Last before execve: no_new_privs, which lets an unprivileged task install a filter and makes
// set-uid binaries inert (seccomp(2), PR_SET_NO_NEW_PRIVS), then the filter when there is one
// (after it, the filter also governs the child's own remaining syscalls).
void lock_down(int channel, const seccomp_policies::BpfProgram* seccomp) noexcept;

}  // namespace pysandbox::jail
