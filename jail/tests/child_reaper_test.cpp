// Waiting for children by SIGCHLD + waitid(P_PID), as rlimit mode does where pidfds are missing.
#include "jail/child_reaper.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <thread>
#include <vector>

#include "base/sys/syscalls.hpp"

namespace pysandbox::jail {
namespace {

using namespace std::chrono_literals;

// A child that sleeps `ms` and exits with `code`; async-signal-safe in the child.
pid_t start_child(int code, int ms = 0) {
  auto pid = base::sys::clone_fork();
  EXPECT_TRUE(pid);
  if (*pid == 0) {
    if (ms > 0) ::usleep(static_cast<useconds_t>(ms) * 1000);
    ::_exit(code);
  }
  return *pid;
}

bool is_waitable(pid_t pid) {
  siginfo_t info{};
  return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
         info.si_pid == pid;
}

TEST(ChildReaper, ReportsTheExitWithoutReaping) {
  boost::asio::io_context io;
  auto& reaper = ChildReaper::of(io.get_executor());
  const pid_t pid = start_child(7, 50);
  bool done = false;
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        auto r = co_await reaper.async_wait_exited(pid);
        EXPECT_TRUE(r);
        EXPECT_FALSE(reaper.watching(pid));
        // Still a zombie: the caller reaps it, with its status.
        auto st = base::sys::wait4_nohang(pid);
        EXPECT_TRUE(st && st->exited);
        EXPECT_EQ(st->code, 7);
        done = true;
      },
      boost::asio::detached);
  io.run();
  EXPECT_TRUE(done);
}

TEST(ChildReaper, AChildThatExitedBeforeTheWaitIsSeen) {
  boost::asio::io_context io;
  auto& reaper = ChildReaper::of(io.get_executor());
  const pid_t pid = start_child(3);
  while (!is_waitable(pid)) std::this_thread::sleep_for(1ms);
  bool done = false;
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        EXPECT_TRUE(co_await reaper.async_wait_exited(pid));
        done = true;
      },
      boost::asio::detached);
  io.run();
  EXPECT_TRUE(done);
  EXPECT_EQ(base::sys::wait4_nohang(pid)->code, 3);
}

TEST(ChildReaper, CoalescedSignalsLoseNoExit) {
  // Twenty children exit at about the same time: fewer SIGCHLDs than exits arrive.
  boost::asio::io_context io;
  auto& reaper = ChildReaper::of(io.get_executor());
  std::vector<pid_t> pids;
  for (int i = 0; i < 20; ++i) pids.push_back(start_child(i, 100));
  int seen = 0;
  for (pid_t pid : pids) {
    boost::asio::co_spawn(
        io,
        [&, pid]() -> boost::asio::awaitable<void> {
          if (co_await reaper.async_wait_exited(pid)) ++seen;
        },
        boost::asio::detached);
  }
  const auto start = std::chrono::steady_clock::now();
  io.run();
  EXPECT_EQ(seen, 20);
  // Through SIGCHLD, not only the slow fallback poll.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  for (std::size_t i = 0; i < pids.size(); ++i) {
    EXPECT_EQ(base::sys::wait4_nohang(pids[i])->code, static_cast<int>(i));
  }
}

TEST(ChildReaper, NeverTouchesChildrenItWasNotAskedAbout) {
  boost::asio::io_context io;
  auto& reaper = ChildReaper::of(io.get_executor());
  const pid_t foreign = start_child(9);
  const pid_t mine = start_child(1, 100);
  boost::asio::co_spawn(
      io, [&]() -> boost::asio::awaitable<void> { co_await reaper.async_wait_exited(mine); },
      boost::asio::detached);
  io.run();
  // The foreign child's exit is still there for its owner.
  EXPECT_TRUE(is_waitable(foreign));
  EXPECT_EQ(base::sys::wait4_blocking(foreign)->code, 9);
  (void)base::sys::wait4_nohang(mine);
}

TEST(ChildReaper, NotOurChildIsAnError) {
  boost::asio::io_context io;
  auto& reaper = ChildReaper::of(io.get_executor());
  bool done = false;
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        auto r = co_await reaper.async_wait_exited(1);
        EXPECT_FALSE(r);
        EXPECT_EQ(r.error().value(), ECHILD);
        done = true;
      },
      boost::asio::detached);
  io.run();
  EXPECT_TRUE(done);
}

TEST(ChildReaper, DestroyedWhileWaitingUnregisters) {
  const pid_t pid = start_child(0, 60000);
  {
    boost::asio::io_context io;
    auto& reaper = ChildReaper::of(io.get_executor());
    boost::asio::co_spawn(
        io, [&]() -> boost::asio::awaitable<void> { co_await reaper.async_wait_exited(pid); },
        boost::asio::detached);
    io.run_for(50ms);
    EXPECT_TRUE(reaper.watching(pid));
  }  // the io_context shuts the reaper down, then destroys the suspended frame
  ::kill(pid, SIGKILL);
  EXPECT_EQ(base::sys::wait4_blocking(pid)->signal, SIGKILL);
}

}  // namespace
}  // namespace pysandbox::jail
