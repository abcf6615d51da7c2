#include "probe/proc_environ.hpp"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "probe/child.hpp"

namespace pysandbox::probe {

Facility proc_environ_protected(uid_t uid, gid_t gid) {
  constexpr const char* kName = "proc_environ_protected";
  const std::string path = "/proc/" + std::to_string(::getpid()) + "/environ";
  const ChildRun run = run_in_child([&](int fd) {
    if (::syscall(SYS_setgroups, 0, nullptr) != 0 || ::syscall(SYS_setresgid, gid, gid, gid) != 0 ||
        ::syscall(SYS_setresuid, uid, uid, uid) != 0) {
      report(fd, 0, errno);
      return;
    }
    report(fd, 0, 0);
    const int environ_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    char c;
    const int err = environ_fd < 0 ? errno : (::read(environ_fd, &c, 1) < 0 ? errno : 0);
    report(fd, 1, err);  // 0: readable
  });
  if (run.fork_err != 0)
    return {kName, false, run.fork_err, run.fork_call == "pipe" ? "pipe" : "fork"};
  const auto& records = run.records;
  if (records.size() != 2 || records[0].err != 0)
    return {kName, false, records.empty() ? 0 : records[0].err,
            "could not become uid " + std::to_string(uid)};
  if (records[1].err == 0)
    return {kName, false, 0, "uid " + std::to_string(uid) + " can read " + path};
  return {kName, true, 0, ""};
}

}  // namespace pysandbox::probe
