#include "seccomp_policies/tests/child.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/sys/unique_fd.hpp"

namespace pysandbox::seccomp_policies::testing {
namespace {

using base::sys::UniqueFd;

// Runs in the child: everything the sandbox does before the script's code.
void enter_filter(const BpfProgram* program) {
  const rlimit no_core{0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);  // KILL_PROCESS would otherwise dump core
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ::_exit(kNoNewPrivsFailed);
  if (program && install(*program) != 0) ::_exit(kInstallFailed);
}

ChildResult wait_for(pid_t pid) {
  ChildResult result;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) {
    result.exited = true;
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  }
  return result;
}

}  // namespace

std::string ChildResult::describe() const {
  std::string text =
      exited ? "exited with " + std::to_string(exit_code)
             : "killed by signal " + std::to_string(signal) + " (" + ::strsignal(signal) + ")";
  if (!output.empty()) text += "; output:\n" + output;
  return text;
}

int errno_of(long result) {
  if (result >= 0) return 0;
  return errno < kNoNewPrivsFailed ? errno : kNoNewPrivsFailed - 1;
}

ChildResult run_probe(const BpfProgram* program, int (*probe)()) {
  const pid_t pid = ::fork();
  if (pid < 0) return {};
  if (pid == 0) {
    enter_filter(program);
    ::_exit(probe());
  }
  return wait_for(pid);
}

ChildResult run_program(const BpfProgram& program, const std::vector<std::string>& argv,
                        const std::vector<std::string>& env, std::chrono::milliseconds timeout) {
  // Built before fork: the child must not allocate.
  std::vector<char*> c_argv;
  for (const std::string& arg : argv) c_argv.push_back(const_cast<char*>(arg.c_str()));
  c_argv.push_back(nullptr);
  std::vector<char*> c_env;
  for (const std::string& var : env) c_env.push_back(const_cast<char*>(var.c_str()));
  c_env.push_back(nullptr);

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return {};
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);
  UniqueFd dev_null(::open("/dev/null", O_RDONLY | O_CLOEXEC));

  const pid_t pid = ::fork();
  if (pid < 0) return {};
  if (pid == 0) {
    ::dup2(dev_null.get(), STDIN_FILENO);
    ::dup2(write_end.get(), STDOUT_FILENO);
    ::dup2(write_end.get(), STDERR_FILENO);
    enter_filter(&program);
    ::execve(c_argv[0], c_argv.data(), c_env.data());
    ::_exit(kExecFailed);
  }
  write_end.reset();

  std::string output;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd pfd{read_end.get(), POLLIN, 0};
    const int ready = left.count() > 0 ? ::poll(&pfd, 1, static_cast<int>(left.count())) : 0;
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      ::kill(pid, SIGKILL);
      output += "\n[timed out]\n";
      break;
    }
    char buffer[4096];
    const ssize_t n = ::read(read_end.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    output.append(buffer, static_cast<std::size_t>(n));
  }
  ChildResult result = wait_for(pid);
  result.output = std::move(output);
  return result;
}

}  // namespace pysandbox::seccomp_policies::testing
