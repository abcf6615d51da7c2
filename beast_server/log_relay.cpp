#include "beast_server/log_relay.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

#include "base/sys/syscalls.hpp"
#include "beast_server/log_line.hpp"

namespace pysandbox::beast_server {

namespace {

// How long finish() waits for the relay to pass on the last lines.
constexpr auto kFinishTimeout = std::chrono::seconds(3);
// A pipe this large absorbs bursts (startup probes, a zygote's traceback) without making the
// writer wait for the relay.
constexpr int kPipeBytes = 1 << 20;

void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // nowhere to report it
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

void emit(int out, std::string_view line) {
  write_all(out, stamp_log_line(line, std::chrono::system_clock::now()) + "\n");
}

}  // namespace

void relay_log_lines(int in, int out) {
  std::string pending;
  char chunk[16384];
  for (;;) {
    const ssize_t n = ::read(in, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(chunk, static_cast<std::size_t>(n));
    std::size_t start = 0;
    for (std::size_t newline; (newline = pending.find('\n', start)) != std::string::npos;) {
      emit(out, std::string_view(pending).substr(start, newline - start));
      start = newline + 1;
    }
    pending.erase(0, start);
    // A line without an end is cut, so that memory stays bounded.
    while (pending.size() >= kMaxLogLine) {
      emit(out, std::string_view(pending).substr(0, kMaxLogLine));
      pending.erase(0, kMaxLogLine);
    }
  }
  if (!pending.empty()) emit(out, pending);
}

std::optional<LogRelay> LogRelay::start() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return std::nullopt;
  base::sys::UniqueFd read_end(fds[0]);
  base::sys::UniqueFd write_end(fds[1]);
  (void)::fcntl(write_end.get(), F_SETPIPE_SZ, kPipeBytes);
  base::sys::UniqueFd original(::fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3));
  if (!original) return std::nullopt;

  const pid_t pid = ::fork();
  if (pid < 0) return std::nullopt;
  if (pid == 0) {
    // The relay: nothing of the server but these two descriptors. Signals meant for the server
    // (a terminal's ^C reaches the whole process group) must not end it before the server's
    // last lines are out: it ends at EOF, when every writer is gone.
    ::prctl(PR_SET_NAME, "pysandboxd-log");
    // It needs nothing from the environment, and where the kernel does not guard
    // /proc/<pid>/environ (gVisor) a run could read the server's secrets there: blank it in
    // memory (that is what environ shows), as the server does its own.
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      std::memset(*e, 0, std::strlen(*e));
    }
    for (const int sig : {SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGPIPE}) {
      ::signal(sig, SIG_IGN);
    }
    write_end.reset();
    relay_log_lines(read_end.get(), original.get());
    ::_exit(0);
  }
  read_end.reset();
  if (::dup2(write_end.get(), STDERR_FILENO) < 0) {
    // The relay sees EOF once the write end goes and exits; reap it.
    write_end.reset();
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    return std::nullopt;
  }
  return LogRelay(pid, std::move(original));
}

LogRelay::LogRelay(pid_t pid, base::sys::UniqueFd original_stderr)
    : pid_(pid), original_stderr_(std::move(original_stderr)) {}

LogRelay::LogRelay(LogRelay&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      original_stderr_(std::move(other.original_stderr_)),
      child_(std::move(other.child_)) {}

LogRelay::~LogRelay() { finish(); }

void LogRelay::watch(const boost::asio::any_io_executor& io) {
  if (pid_ < 0 || child_) return;
  // Without pidfds (gVisor) there is no warm pool, hence no sweep to be protected from.
  if (auto pidfd = base::sys::pidfd_open(pid_)) {
    child_ = std::make_unique<jail::Child>(io, pid_, std::move(*pidfd));
  }
}

void LogRelay::finish() {
  if (pid_ < 0) return;
  std::fflush(stderr);
  // The server's write end goes; the relay reads to EOF once the other writers (zygotes) are
  // gone too.
  (void)::dup2(original_stderr_.get(), STDERR_FILENO);
  const auto deadline = std::chrono::steady_clock::now() + kFinishTimeout;
  bool exited = false;
  if (auto pidfd = base::sys::pidfd_open(pid_)) {
    pollfd p{pidfd->get(), POLLIN, 0};
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      const int rc = ::poll(&p, 1, static_cast<int>(left.count()));
      if (rc > 0) {
        exited = true;
        break;
      }
      if (rc < 0 && errno != EINTR) break;
    }
  } else {
    // No pidfds: poll the exit status, briefly, without blocking forever on a stuck writer.
    while (std::chrono::steady_clock::now() < deadline) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      ::usleep(10000);
    }
  }
  if (child_) {
    // jail::Child kills (if still running) and reaps on destruction.
    child_.reset();
  } else {
    if (!exited) ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  pid_ = -1;
}

}  // namespace pysandbox::beast_server
