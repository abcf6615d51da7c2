#include "probe/seccomp.hpp"

#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "probe/child.hpp"
#include "seccomp_policies/bpf_program.hpp"

namespace pysandbox::probe {

Facility seccomp_holds(const seccomp_policies::BpfProgram& program) {
  const ChildRun run = run_in_child([&program](int fd) {
    // Async-signal-safe from here on.
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
      report(fd, 0, errno);
      return;
    }
    if (int err = seccomp_policies::install(program); err != 0) {
      report(fd, 1, err);
      return;
    }
    report(fd, 1, 0);
    // Each of these must be refused with EPERM (the record carries what happened instead).
    report(fd, 2, ::unshare(CLONE_NEWUSER) == 0 ? 0 : errno);
    const long pid = ::syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, nullptr, nullptr, nullptr, 0);
    if (pid == 0) ::_exit(0);
    if (pid > 0) {
      int status;
      ::waitpid(static_cast<pid_t>(pid), &status, 0);
    }
    report(fd, 3, pid < 0 ? errno : 0);
    const int sock = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    report(fd, 4, sock < 0 ? errno : 0);
    report(fd, 5, ::unshare(CLONE_NEWNET) == 0 ? 0 : errno);
  });
  if (run.fork_err != 0) {
    return {
        "seccomp", false, run.fork_err,
        (run.fork_call == "pipe" ? "pipe: " : "fork: ") + std::string(std::strerror(run.fork_err))};
  }

  static constexpr const char* kWhat[] = {
      "prctl(PR_SET_NO_NEW_PRIVS)", "loading the filter", "unshare(CLONE_NEWUSER)",
      "clone(CLONE_NEWUSER)",       "socket(AF_INET)",    "unshare(CLONE_NEWNET)"};
  bool loaded = false;
  std::string wrong;
  int wrong_err = 0;
  for (const Record& r : run.records) {
    if (r.step < 0 || r.step > 5) continue;
    const char* what = kWhat[r.step];
    if (r.step <= 1) {
      if (r.err != 0)
        return {"seccomp", false, r.err, std::string(what) + ": " + std::strerror(r.err)};
      loaded = r.step == 1;
      continue;
    }
    if (r.err != EPERM) {
      if (!wrong.empty()) wrong += "; ";
      wrong += std::string(what) +
               (r.err == 0 ? " succeeded" : ": " + std::string(std::strerror(r.err))) +
               " under the filter (expected EPERM)";
      if (wrong_err == 0) wrong_err = r.err;
    }
  }
  if (!loaded) return {"seccomp", false, 0, "the probe child died before loading the filter"};
  if (run.records.empty() || run.records.back().step != 5)
    return {"seccomp", false, 0, "the probe child died under the filter"};
  if (!wrong.empty()) return {"seccomp", false, wrong_err, wrong};
  return {"seccomp", true, 0, ""};
}

}  // namespace pysandbox::probe
