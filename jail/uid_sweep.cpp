#include "jail/uid_sweep.hpp"

#include <dirent.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <string>

#include "base/sys/block_signals.hpp"
#include "base/sys/syscalls.hpp"
#include "jail/child_steps.hpp"
#include "jail/scratch_dir.hpp"

namespace pysandbox::jail {

boost::system::result<void> run_as_uid(uid_t uid, gid_t gid, int (*fn)(const void*) noexcept,
                                       const void* arg) {
  if (uid == 0) return base::sys::errno_code(EINVAL);  // kill(-1) as root would take everything
  boost::system::result<pid_t> helper = boost::system::error_code{};
  {
    base::sys::BlockAllSignals blocked;
    helper = base::sys::clone_fork();
    if (helper && *helper == 0) {
      // Async-signal-safe only (jail/child_steps.hpp). Exit status = errno or 0.
      int index = 0;
      if (int err = take_ids(uid, gid, index); err != 0) ::_exit(err);
      ::_exit(fn(arg) & 0xff);
    }
  }
  if (!helper) return helper.error();
  auto status = base::sys::wait4_blocking(*helper);
  if (!status) return status.error();
  if (status->signal != 0) return base::sys::errno_code(EINTR);
  if (status->code != 0) return base::sys::errno_code(status->code);
  return {};
}

boost::system::result<void> kill_all_of_uid(uid_t uid, gid_t gid) {
  return run_as_uid(
      uid, gid,
      [](const void*) noexcept -> int {
        // ESRCH: there was nothing left to kill.
        return ::syscall(SYS_kill, -1, SIGKILL) == 0 || errno == ESRCH ? 0 : errno;
      },
      nullptr);
}

boost::system::result<void> remove_as_uid(uid_t uid, gid_t gid, int dir_fd,
                                          const std::vector<std::string>& names,
                                          const std::vector<std::string>& shared_dirs) {
  // Everything the helper needs, laid out before the fork.
  struct Job {
    uid_t uid;
    int dir_fd;
    std::vector<const char*> names;
    std::vector<const char*> shared;
  } job{uid, dir_fd, {}, {}};
  for (const auto& n : names) job.names.push_back(n.c_str());
  for (const auto& d : shared_dirs) job.shared.push_back(d.c_str());
  return run_as_uid(
      uid, gid,
      [](const void* arg) noexcept -> int {
        const auto& j = *static_cast<const Job*>(arg);
        int first = 0;
        for (const char* name : j.names) {
          const int err = remove_tree_raw(j.dir_fd, name);
          if (first == 0) first = err;
        }
        for (const char* dir : j.shared) {
          std::size_t removed = 0;
          const int err = remove_entries_owned_by_raw(dir, j.uid, &removed);
          if (first == 0) first = err;
        }
        return first;
      },
      &job);
}

std::vector<UidProcess> processes_of_uid(uid_t uid) {
  std::vector<UidProcess> out;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return out;
  const pid_t self = ::getpid();
  while (const dirent* e = ::readdir(proc)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    std::ifstream status(std::string("/proc/") + e->d_name + "/status");
    std::string line;
    UidProcess p;
    p.pid = static_cast<pid_t>(pid);
    bool has_uid = false;
    long ppid = -1;
    while (std::getline(status, line)) {
      if (line.rfind("State:", 0) == 0) {
        p.zombie = line.find('Z') != std::string::npos;
      } else if (line.rfind("PPid:", 0) == 0) {
        ppid = std::strtol(line.c_str() + 5, nullptr, 10);
      } else if (line.rfind("Uid:", 0) == 0) {
        has_uid = std::strtoul(line.c_str() + 4, nullptr, 10) == uid;
        break;  // Uid comes after State and PPid
      }
    }
    if (!has_uid) continue;
    p.our_child = ppid == self;
    out.push_back(p);
  }
  ::closedir(proc);
  return out;
}

}  // namespace pysandbox::jail
