#include "beast_server/startup_checks.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "base/sys/unique_fd.hpp"

namespace pysandbox::beast_server {

namespace {

constexpr auto kPreloadTimeout = std::chrono::seconds(30);
// What the interpreter may print: one line per missing module, bounded by the list itself.
constexpr std::size_t kMaxOutput = 64u << 10;

constexpr const char* kFindSpecs = R"(import importlib.util, sys
for name in sys.argv[1:]:
    try:
        found = importlib.util.find_spec(name) is not None
    except Exception:  # a missing parent package raises
        found = False
    if not found:
        print("missing", name)
)";

std::string quoted_list(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "'" : ", '") + name + "'";
  return out;
}

}  // namespace

std::optional<std::string> check_extra_ro_paths(const std::vector<std::string>& paths) {
  for (const auto& path : paths) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      return "--extra-ro-paths: " + path + ": " + std::strerror(errno);
    }
  }
  return std::nullopt;
}

std::optional<std::string> check_preload(const std::string& python,
                                         const std::vector<std::string>& modules,
                                         std::chrono::milliseconds timeout) {
  if (modules.empty()) return std::nullopt;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return std::string("--preload: cannot check the modules: pipe: ") + std::strerror(errno);
  }
  base::sys::UniqueFd read_end(fds[0]);
  base::sys::UniqueFd write_end(fds[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDERR_FILENO);
  std::vector<std::string> args = {python, "-I", "-c", kFindSpecs};
  args.insert(args.end(), modules.begin(), modules.end());
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::string path_env = "PATH=/usr/local/bin:/usr/bin:/bin";
  std::string lang_env = "LC_ALL=C.UTF-8";
  char* envp[] = {path_env.data(), lang_env.data(), nullptr};
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, python.c_str(), &actions, nullptr, argv.data(), envp);
  posix_spawn_file_actions_destroy(&actions);
  write_end.reset();
  if (rc != 0) {
    return "--python: cannot run " + python + " to check --preload: " + std::strerror(rc);
  }

  std::string output;
  bool timed_out = false;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{read_end.get(), POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;  // the deadline check ends it
    char chunk[4096];
    const ssize_t n = ::read(read_end.get(), chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (output.size() < kMaxOutput) output.append(chunk, static_cast<std::size_t>(n));
  }
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return "--preload: " + python + " did not answer within " + std::to_string(timeout.count()) +
           " ms";
  }

  std::vector<std::string> missing;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("missing ", 0) == 0) missing.push_back(line.substr(8));
  }
  if (!missing.empty()) {
    return "--preload: " + python + " has no module" + (missing.size() > 1 ? "s " : " ") +
           quoted_list(missing) + " (importlib.util.find_spec found nothing)";
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string first_line = output.substr(0, output.find('\n'));
    return "--python: " + python + " failed while checking --preload" +
           (first_line.empty() ? std::string() : ": " + first_line.substr(0, 200));
  }
  return std::nullopt;
}

std::optional<std::string> check_startup_config(const Config& config) {
  if (auto error = check_extra_ro_paths(config.executor.extra_ro_paths)) return error;
  if (config.executor.pool) {
    if (auto error =
            check_preload(config.executor.python_path, config.executor.preload,
                          std::chrono::duration_cast<std::chrono::milliseconds>(kPreloadTimeout))) {
      return error;
    }
  }
  return std::nullopt;
}

}  // namespace pysandbox::beast_server
