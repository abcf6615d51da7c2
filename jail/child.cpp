#include "jail/child.hpp"

#include <poll.h>
#include <signal.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <mutex>
#include <unordered_set>

namespace pysandbox::jail {

namespace {

std::mutex g_watched_mutex;
std::unordered_set<pid_t> g_watched;

void unwatch(pid_t pid) {
  std::lock_guard lock(g_watched_mutex);
  g_watched.erase(pid);
}

}  // namespace

bool Child::is_watched(pid_t pid) {
  std::lock_guard lock(g_watched_mutex);
  return g_watched.contains(pid);
}

Child::Child(boost::asio::any_io_executor io, pid_t pid, base::sys::UniqueFd pidfd)
    : pid_(pid), pidfd_(std::move(io), pidfd.release()) {
  std::lock_guard lock(g_watched_mutex);
  g_watched.insert(pid_);
}

Child::~Child() {
  if (!reaped_ && pidfd_.is_open()) base::sys::kill_and_reap(pidfd_.native_handle());
  if (!reaped_) unwatch(pid_);
}

void Child::kill() noexcept {
  if (reaped_ || !pidfd_.is_open()) return;
  // ESRCH only means it is already gone.
  (void)base::sys::pidfd_send_signal(pidfd_.native_handle(), SIGKILL);
}

bool Child::exited() const noexcept {
  if (reaped_) return true;
  struct pollfd p {
    const_cast<boost::asio::posix::stream_descriptor&>(pidfd_).native_handle(), POLLIN, 0
  };
  return ::poll(&p, 1, 0) > 0 && (p.revents & POLLIN) != 0;
}

void Child::signal(int sig) noexcept {
  if (reaped_ || !pidfd_.is_open()) return;
  (void)base::sys::pidfd_send_signal(pidfd_.native_handle(), sig);
}

boost::asio::awaitable<base::sys::Result<base::sys::ExitStatus>> Child::async_wait_exit() {
  using boost::asio::as_tuple;
  using boost::asio::use_awaitable;
  for (;;) {
    auto status = base::sys::reap_pidfd(pidfd_.native_handle());
    if (!status) co_return status;
    if (status->exited) {
      reaped_ = true;
      unwatch(pid_);
      co_return status;
    }
    auto [ec] = co_await pidfd_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                                           as_tuple(use_awaitable));
    if (ec) co_return ec;
  }
}

}  // namespace pysandbox::jail
