#include "cgroups/cgroup_kill.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <variant>

#include "base/sys/unique_fd.hpp"
#include "cgroups/cgroupfs.hpp"

namespace pysandbox::cgroups::detail {

namespace {

using base::sys::UniqueFd;
using Clock = std::chrono::steady_clock;

Error timeout_error(std::string_view leaf_path, std::chrono::milliseconds timeout) {
  return Error(ETIMEDOUT, "wait for " + fs::join(leaf_path, "cgroup.events") +
                              " \"populated 0\": still populated after " +
                              std::to_string(timeout.count()) +
                              " ms (a process stuck in uninterruptible sleep?)");
}

// inotify fd watching <leaf>/cgroup.events, or an empty fd if the cgroup is already gone.
Result<UniqueFd> watch_events(const std::string& leaf_path) {
  UniqueFd fd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!fd) return errno_error(errno, "inotify_init1 for", leaf_path);
  const std::string events = fs::join(leaf_path, "cgroup.events");
  if (::inotify_add_watch(fd.get(), events.c_str(), IN_MODIFY) < 0) {
    if (errno == ENOENT) return UniqueFd();
    return errno_error(errno, "inotify_add_watch", events);
  }
  return fd;
}

void drain(int fd) {
  alignas(inotify_event) char buf[4096];
  while (::read(fd, buf, sizeof buf) > 0) {
  }
}

// Kills again when cgroup.kill is missing: the fallback cannot stop a fork racing the kill.
Result<bool> kill_and_check(int leaf_fd, std::string_view leaf_path) {
  auto populated = read_populated(leaf_fd, leaf_path);
  if (populated && *populated && !fs::exists_at(leaf_fd, "cgroup.kill")) {
    if (auto killed = kill_cgroup(leaf_fd, leaf_path); !killed) return killed.error();
  }
  return populated;
}

}  // namespace

Result<void> kill_cgroup(int leaf_fd, std::string_view leaf_path) {
  auto written = fs::write_file_at(leaf_fd, leaf_path, "cgroup.kill", "1");
  if (written) return written;
  if (written.error().code() != ENOENT) return written.error();
  // Either the cgroup is gone (fine) or the kernel predates cgroup.kill.
  auto procs = fs::read_file_at(leaf_fd, leaf_path, "cgroup.procs");
  if (!procs) {
    if (procs.error().code() == ENOENT) return {};
    return procs.error();
  }
  for (const std::string& word : fs::split_words(*procs)) {
    if (auto pid = fs::parse_u64(word)) ::kill(static_cast<pid_t>(*pid), SIGKILL);
  }
  return {};
}

Result<bool> read_populated(int leaf_fd, std::string_view leaf_path) {
  auto events = fs::read_file_at(leaf_fd, leaf_path, "cgroup.events");
  if (!events) {
    if (events.error().code() == ENOENT) return false;  // removed under us
    return events.error();
  }
  auto populated = fs::flat_keyed_value(*events, "populated");
  if (!populated) {
    return Error(EPROTO, "parse " + fs::join(leaf_path, "cgroup.events") + ": no \"populated\"");
  }
  return *populated != 0;
}

Result<void> wait_unpopulated(int leaf_fd, const std::string& leaf_path,
                              std::chrono::milliseconds timeout) {
  // Watch first, then read: a change between the two still wakes us.
  auto watch = watch_events(leaf_path);
  if (!watch) return watch.error();
  if (!*watch) return {};
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    auto populated = kill_and_check(leaf_fd, leaf_path);
    if (!populated) return populated.error();
    if (!*populated) return {};
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return timeout_error(leaf_path, timeout);
    pollfd pfd{watch->get(), POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left)) < 0 && errno != EINTR) {
      return errno_error(errno, "poll inotify for", leaf_path);
    }
    drain(watch->get());
  }
}

boost::asio::awaitable<Result<void>> async_wait_unpopulated(int leaf_fd, std::string leaf_path,
                                                            std::chrono::milliseconds timeout) {
  using namespace boost::asio::experimental::awaitable_operators;
  namespace asio = boost::asio;
  auto watch = watch_events(leaf_path);
  if (!watch) co_return watch.error();
  if (!*watch) co_return Result<void>();
  const auto executor = co_await asio::this_coro::executor;
  // The stream_descriptor becomes the inotify fd's owner (it closes it).
  asio::posix::stream_descriptor events(executor, watch->release());
  asio::steady_timer deadline(executor);
  deadline.expires_after(timeout);
  for (;;) {
    auto populated = kill_and_check(leaf_fd, leaf_path);
    if (!populated) co_return populated.error();
    if (!*populated) co_return Result<void>();
    if (deadline.expiry() <= Clock::now()) co_return timeout_error(leaf_path, timeout);
    // Whichever finishes first cancels the other; the timer keeps its expiry across rounds.
    auto which = co_await (events.async_wait(asio::posix::descriptor_base::wait_read,
                                             asio::as_tuple(asio::use_awaitable)) ||
                           deadline.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (which.index() == 0) {
      if (const auto [ec] = std::get<0>(which); ec) {
        co_return Error(ec.value(), "wait on inotify for " + fs::join(leaf_path, "cgroup.events") +
                                        ": " + ec.message());
      }
      drain(events.native_handle());
    }
  }
}

}  // namespace pysandbox::cgroups::detail
