// Runs the real pysandboxd binary for a test: ephemeral port, stderr captured line by line.
// With PYSANDBOX_E2E_WRAPPER set (e.g. "../shared/tools/gvisor-run --network host --"), the
// server is started through that command line instead, on a free port below 32000; pid() is
// then the wrapper's.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace pysandbox::e2e {

// RLIMIT_NOFILE to start the server under (e.g. systemd's default soft limit of 1024).
struct NofileLimit {
  rlim_t soft;
  rlim_t hard;
};

class ServerProcess {
 public:
  // Starts the server with `args` (plus --listen 127.0.0.1 --port 0) and `env` additions, and
  // waits for its startup line. Throws std::runtime_error (with the server's stderr) on failure.
  // `cgroup`: a cgroup v2 directory the server process enters before exec (VM tests only).
  // `nofile`: the descriptor limit the server starts with (inherited otherwise).
  explicit ServerProcess(std::vector<std::string> args = {}, std::vector<std::string> env = {},
                         std::string cgroup = {}, std::optional<NofileLimit> nofile = {});
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  unsigned short port() const { return port_; }
  pid_t pid() const { return pid_; }

  // Sends `sig` and waits for exit; returns the exit status (128+N if killed by N).
  int stop(int sig);
  // Blocks until the server exits by itself (e.g. a refused start); returns the status.
  int wait_exit();

  // Every stderr line so far.
  std::vector<std::string> log_lines() const;
  // Waits until some stderr line contains `needle` (bounded); returns it or "".
  std::string wait_for_log(const std::string& needle, int timeout_ms = 10000) const;

 private:
  void read_stderr(int fd);
  void wait_for_pool();

  pid_t pid_ = -1;
  unsigned short port_ = 0;
  int exit_status_ = -1;
  std::thread reader_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<std::string> lines_;
  bool eof_ = false;
};

// Starts a server that is expected to refuse to start; returns (exit status, stderr). A server
// still running after timeout_ms is killed (status 128 + 9), so that a server that starts
// where it should not fails the test instead of hanging it.
std::pair<int, std::string> run_server_to_exit(std::vector<std::string> args,
                                               int timeout_ms = 120000);

}  // namespace pysandbox::e2e
