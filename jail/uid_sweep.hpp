// What the server does to everything of one sandbox uid, wherever its processes went and
// whatever files they left: signal, remove, list. A run's uid is its identity in rlimit mode (no
// PID namespace to kill as a whole), and the leftover sweep at startup in every mode.
#pragma once

#include <sys/types.h>

#include <boost/system/result.hpp>
#include <string>
#include <vector>

namespace pysandbox::jail {

// Runs `fn(arg)` in a throwaway child that has taken uid/gid (no supplementary groups), and
// waits for it: its return value (0 or an errno) is the result. `fn` runs between fork and
// _exit: async-signal-safe code only. For what a root server without CAP_DAC_OVERRIDE or
// CAP_KILL (GKE Sandbox's minimal capability set) may not do to another uid's files and
// processes, but that uid may. Needs CAP_SETUID/CAP_SETGID; refuses uid 0.
boost::system::result<void> run_as_uid(uid_t uid, gid_t gid, int (*fn)(const void*) noexcept,
                                       const void* arg);

// SIGKILL for every process whose real or saved uid is `uid`, wherever it went (own session,
// reparented, ...): kill(-1, SIGKILL) as that uid (run_as_uid), which reaches exactly the
// processes that uid may signal -- its own (kill(2)); never the server nor other sandboxes
// (other uids). Blocks for the helper's few syscalls.
boost::system::result<void> kill_all_of_uid(uid_t uid, gid_t gid);

// As `uid` (run_as_uid): removes the entries `names` of `dir_fd` with everything below them,
// then the entries of `uid` in each of `shared_dirs` (world-writable directories: the sticky bit
// lets an owner remove its own). Carries on past failures; returns the first.
boost::system::result<void> remove_as_uid(uid_t uid, gid_t gid, int dir_fd,
                                          const std::vector<std::string>& names,
                                          const std::vector<std::string>& shared_dirs);

// Pids of the processes whose real uid is `uid` (from /proc), zombies included, with whether
// each is a zombie child of this process.
struct UidProcess {
  pid_t pid = 0;
  bool zombie = false;
  bool our_child = false;
};
std::vector<UidProcess> processes_of_uid(uid_t uid);

}  // namespace pysandbox::jail
