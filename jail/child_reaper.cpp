#include "jail/child_reaper.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <chrono>
#include <stdexcept>

namespace pysandbox::jail {

namespace {
// Only a safety net behind SIGCHLD: it bounds the damage of a lost signal to this delay.
constexpr std::chrono::milliseconds kFallbackPoll{250};
}  // namespace

boost::asio::execution_context::id ChildReaper::id;

ChildReaper& ChildReaper::of(const boost::asio::any_io_executor& io) {
  const auto* executor = io.target<boost::asio::io_context::executor_type>();
  if (executor == nullptr) throw std::invalid_argument("ChildReaper needs an io_context");
  return boost::asio::use_service<ChildReaper>(executor->context());
}

ChildReaper::ChildReaper(boost::asio::io_context& io)
    : boost::asio::execution_context::service(io), io_(io) {
  // Catching SIGCHLD starts here; a signal that arrives while no wait is pending is kept by the
  // set and completes the next wait.
  signals_.emplace(io, SIGCHLD);
  fallback_.emplace(io);
}

ChildReaper::~ChildReaper() { shutdown(); }

void ChildReaper::shutdown() {
  if (!*alive_) return;
  *alive_ = false;
  // Runs before the io_context destroys pending handlers and suspended frames: their owners
  // (RlimitChild) kill and reap the processes; the waiters just stop being ours.
  waiters_.clear();
  signals_.reset();
  fallback_.reset();
}

// Waits are pending only while someone waits for a child, so that an idle reaper does not keep
// io_context::run() from returning.
void ChildReaper::arm_signal() {
  if (signal_armed_ || waiters_.empty()) return;
  signal_armed_ = true;
  signals_->async_wait([this, alive = alive_](boost::system::error_code ec, int) {
    if (!*alive) return;
    signal_armed_ = false;
    if (ec == boost::asio::error::operation_aborted) return;
    poll();
    arm_signal();
  });
}

void ChildReaper::arm_fallback() {
  if (fallback_armed_ || waiters_.empty()) return;
  fallback_armed_ = true;
  fallback_->expires_after(kFallbackPoll);
  fallback_->async_wait([this, alive = alive_](boost::system::error_code ec) {
    if (!*alive) return;
    fallback_armed_ = false;
    if (ec == boost::asio::error::operation_aborted) return;
    poll();
    arm_fallback();
  });
}

bool ChildReaper::poll_one(pid_t pid, Waiter& waiter) noexcept {
  siginfo_t info{};
  for (;;) {
    // WNOWAIT: look, do not reap (see async_wait_exited).
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0) break;
    if (errno == EINTR) continue;
    waiter.error = base::sys::last_errno();  // ECHILD: not our child, or reaped by someone else
    waiter.done = true;
    return true;
  }
  if (info.si_pid != pid) return false;
  waiter.done = true;
  return true;
}

void ChildReaper::poll() {
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    Waiter& waiter = *it->second;
    if (poll_one(it->first, waiter)) {
      waiter.wake->cancel();
      it = waiters_.erase(it);
    } else {
      ++it;
    }
  }
  idle_if_unused();
}

void ChildReaper::idle_if_unused() {
  if (!waiters_.empty()) return;
  // Nothing to wait for: no pending operation may keep io_context::run() going. SIGCHLD stays
  // caught (the set keeps it for the next wait).
  boost::system::error_code ignored;
  if (signal_armed_) signals_->cancel(ignored);
  if (fallback_armed_) fallback_->cancel();
}

boost::asio::awaitable<base::sys::Result<void>> ChildReaper::async_wait_exited(pid_t pid) {
  if (!*alive_ || pid <= 0 || waiters_.count(pid) != 0) co_return base::sys::errno_code(EINVAL);
  boost::asio::steady_timer wake(io_, boost::asio::steady_timer::time_point::max());
  Waiter waiter;
  waiter.wake = &wake;
  // Registered before the first look: an exit between the two is seen by the look, one after it
  // by the next SIGCHLD (same thread, so no handler can run in between).
  if (!poll_one(pid, waiter)) {
    waiters_.emplace(pid, &waiter);
    // If this frame is destroyed while suspended (the io_context goes away), unregister.
    struct Unregister {
      ChildReaper* self;
      pid_t pid;
      std::shared_ptr<bool> alive;
      ~Unregister() {
        if (!*alive) return;
        self->waiters_.erase(pid);
        self->idle_if_unused();
      }
    } unregister{this, pid, alive_};
    arm_signal();
    arm_fallback();
    while (!waiter.done) {
      auto [ec] = co_await wake.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
      (void)ec;  // cancelled by poll() once done; a spurious wake-up just loops
    }
  }
  if (waiter.error) co_return waiter.error;
  co_return base::sys::Result<void>{};
}

}  // namespace pysandbox::jail
