#include "tests/e2e/server_process.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <chrono>
#include <cstdlib>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/e2e/http_client.hpp"

namespace pysandbox::e2e {

namespace {

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// PYSANDBOX_E2E_WRAPPER, split at spaces: the command line the server is started through
// (e.g. ".../gvisor-run --network host --"); empty when unset.
std::vector<std::string> wrapper() {
  std::vector<std::string> out;
  if (const char* e = std::getenv("PYSANDBOX_E2E_WRAPPER")) {
    std::istringstream in(e);
    std::string word;
    while (in >> word) out.push_back(word);
  }
  return out;
}

// A free loopback port below the ephemeral range. Through a wrapper the server cannot report an
// ephemeral port usable from here: gVisor's hostinet takes ports from the host's ephemeral range,
// which the README of gvisor-run advises against.
unsigned short pick_port() {
  std::random_device rd;
  std::uniform_int_distribution<int> dist(20000, 32000);
  for (int attempt = 0; attempt < 100; ++attempt) {
    const auto port = static_cast<unsigned short>(dist(rd));
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    if (free) return port;
  }
  throw std::runtime_error("no free port below 32000");
}

pid_t launch(const std::vector<std::string>& args, const std::vector<std::string>& env,
             int stderr_fd, const std::string& cgroup = {},
             std::optional<NofileLimit> nofile = std::nullopt) {
  const std::string procs = cgroup.empty() ? "" : cgroup + "/cgroup.procs";
  std::vector<std::string> argv_s = wrapper();
  const bool wrapped = !argv_s.empty();
  for (const char* a : {PYSANDBOXD_PATH, "--listen", "127.0.0.1", "--port"}) argv_s.push_back(a);
  argv_s.push_back(wrapped ? std::to_string(pick_port()) : "0");
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_s;
  for (char** e = environ; *e != nullptr; ++e) env_s.emplace_back(*e);
  env_s.insert(env_s.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    // A wrapper starts helpers of its own (runsc, cat): a group of their own to stop together.
    if (wrapped) ::setpgid(0, 0);
    if (!procs.empty()) {
      int fd = ::open(procs.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0 || ::write(fd, "0", 1) != 1) ::_exit(126);
      ::close(fd);
    }
    if (nofile) {
      const rlimit limit{nofile->soft, nofile->hard};
      if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) ::_exit(125);
    }
    ::dup2(stderr_fd, 2);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    if (wrapped) {
      ::execvpe(argv[0], argv.data(), envp.data());
    } else {
      ::execve(argv[0], argv.data(), envp.data());
    }
    ::_exit(127);
  }
  return pid;
}

}  // namespace

ServerProcess::ServerProcess(std::vector<std::string> args, std::vector<std::string> env,
                             std::string cgroup, std::optional<NofileLimit> nofile) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  pid_ = launch(args, env, fds[1], cgroup, nofile);
  ::close(fds[1]);
  reader_ = std::thread([this, fd = fds[0]] { read_stderr(fd); });

  // The startup line is a JSON object with the bound port.
  std::unique_lock lock(mu_);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::size_t seen = 0;
  while (port_ == 0) {
    for (; seen < lines_.size(); ++seen) {
      boost::system::error_code ec;
      auto v = boost::json::parse(lines_[seen], ec);
      if (ec || !v.is_object()) continue;
      if (const auto* p = v.as_object().if_contains("port");
          p != nullptr && p->is_int64() && p->as_int64() > 0) {
        port_ = static_cast<unsigned short>(p->as_int64());
      }
    }
    if (port_ != 0) break;
    if (eof_ || cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
      std::string log;
      for (const auto& l : lines_) log += l + "\n";
      lock.unlock();
      stop(SIGKILL);
      throw std::runtime_error("pysandboxd did not start:\n" + log);
    }
  }
  lock.unlock();
  wait_for_pool();
}

// With the warm pool on, the suites test warm sandboxes: wait until no zygote is still starting
// (importing pandas takes ~1 s here, much longer in an emulated VM). Requests made earlier would
// be served cold, which is correct but not what a pool-on run is meant to exercise.
void ServerProcess::wait_for_pool() {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
  while (std::chrono::steady_clock::now() < deadline) {
    auto health = http(port_, {.target = "/healthz"}, 5000);
    boost::system::error_code ec;
    auto doc = boost::json::parse(health.body, ec);
    if (ec || !doc.is_object()) return;
    const auto* pool = doc.as_object().if_contains("pool");
    if (pool == nullptr || !pool->is_object()) return;
    const auto* enabled = pool->as_object().if_contains("enabled");
    if (enabled == nullptr || !enabled->is_bool() || !enabled->as_bool()) return;
    bool starting = false;
    if (const auto* zs = pool->as_object().if_contains("zygotes"); zs && zs->is_array()) {
      for (const auto& z : zs->as_array()) {
        const auto* st = z.is_object() ? z.as_object().if_contains("state") : nullptr;
        starting = starting || (st != nullptr && st->is_string() && st->as_string() == "starting");
      }
    }
    if (!starting) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling a remote state
  }
}

ServerProcess::~ServerProcess() {
  if (exit_status_ < 0) stop(SIGKILL);
}

void ServerProcess::read_stderr(int fd) {
  std::string partial;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    partial.append(buf, static_cast<std::size_t>(n));
    std::size_t nl;
    while ((nl = partial.find('\n')) != std::string::npos) {
      std::lock_guard lock(mu_);
      lines_.push_back(partial.substr(0, nl));
      partial.erase(0, nl + 1);
      cv_.notify_all();
    }
  }
  ::close(fd);
  std::lock_guard lock(mu_);
  if (!partial.empty()) lines_.push_back(partial);
  eof_ = true;
  cv_.notify_all();
}

int ServerProcess::stop(int sig) {
  if (exit_status_ >= 0) return exit_status_;
  if (pid_ > 0 && sig == SIGKILL && !wrapper().empty()) {
    // SIGKILL would leave the wrapper's sandbox (runsc) running: ask it to clean up first, and
    // only then take the whole group.
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    int status = 0;
    while (std::chrono::steady_clock::now() < deadline) {
      const pid_t rc = ::waitpid(pid_, &status, WNOHANG);
      if (rc == pid_) {
        exit_status_ = decode_status(status);
        ::kill(-pid_, SIGKILL);
        if (reader_.joinable()) reader_.join();
        return exit_status_;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(-pid_, SIGKILL);
    return wait_exit();
  }
  if (pid_ > 0) ::kill(pid_, sig);
  return wait_exit();
}

int ServerProcess::wait_exit() {
  if (exit_status_ >= 0) return exit_status_;
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  exit_status_ = decode_status(status);
  if (reader_.joinable()) reader_.join();
  return exit_status_;
}

std::vector<std::string> ServerProcess::log_lines() const {
  std::lock_guard lock(mu_);
  return lines_;
}

std::string ServerProcess::wait_for_log(const std::string& needle, int timeout_ms) const {
  std::unique_lock lock(mu_);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::size_t seen = 0;
  for (;;) {
    for (; seen < lines_.size(); ++seen) {
      if (lines_[seen].find(needle) != std::string::npos) return lines_[seen];
    }
    if (eof_ || cv_.wait_until(lock, deadline) == std::cv_status::timeout) return "";
  }
}

std::pair<int, std::string> run_server_to_exit(std::vector<std::string> args, int timeout_ms) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  pid_t pid = launch(args, {}, fds[1]);
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  bool killed = false;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (!killed && left.count() <= 0) {
      // Still running: it started where it should have refused. Its children (and the log
      // relay) end with it, which ends the pipe.
      ::kill(pid, SIGKILL);
      killed = true;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int ready =
        ::poll(&p, 1, killed ? 10000 : static_cast<int>(std::max<long>(left.count(), 0)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) {
      if (killed) break;  // a leftover writer: give up on the rest
      continue;
    }
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return {decode_status(status), out};
}

}  // namespace pysandbox::e2e
