// The fork-a-child scaffolding of the probes: records come back in order, the parent's side runs
// while the child waits, a failed fork is reported, and a hung child cannot hang startup.
#include "probe/child.hpp"

#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>

#include "base/sys/syscalls.hpp"

namespace pysandbox::probe {
namespace {

TEST(RunInChild, RecordsComeBackInOrderAndTheChildIsReaped) {
  const ChildRun run = run_in_child([](int fd) {
    report(fd, 1, 0);
    report(fd, 2, EPERM);
  });
  EXPECT_EQ(run.fork_err, 0);
  EXPECT_FALSE(run.timed_out);
  ASSERT_EQ(run.records.size(), 2u);
  EXPECT_EQ(run.records[0].step, 1);
  EXPECT_EQ(run.records[1].err, EPERM);
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);  // nothing left to reap
  EXPECT_EQ(errno, ECHILD);
}

TEST(RunInChild, TheChildRunsInItsOwnProcess) {
  const pid_t us = ::getpid();
  const ChildRun run = run_in_child([us](int fd) { report(fd, 0, ::getpid() == us ? 1 : 0); });
  ASSERT_EQ(run.records.size(), 1u);
  EXPECT_EQ(run.records[0].err, 0);
}

TEST(RunInChild, TheParentSideRunsWhileTheChildWaitsForIt) {
  auto gate = base::sys::make_pipe();
  ASSERT_TRUE(gate);
  const int gate_read = gate->read.get();
  pid_t seen = 0;
  const ChildRun run = run_in_child(
      [gate_read](int fd) {
        char c = 0;
        report(fd, 0, ::read(gate_read, &c, 1) == 1 ? c : -1);
      },
      {},
      [&](pid_t pid) {
        seen = pid;
        const char go = 7;
        EXPECT_EQ(::write(gate->write.get(), &go, 1), 1);
        return false;
      });
  EXPECT_GT(seen, 0);
  ASSERT_EQ(run.records.size(), 1u);
  EXPECT_EQ(run.records[0].err, 7);
}

TEST(RunInChild, AFailedForkIsReportedWithItsErrno) {
  ChildOptions options;
  options.clone_flags = CLONE_SIGHAND;  // without CLONE_VM: EINVAL
  bool ran = false;
  const ChildRun run = run_in_child([](int) {}, options, [&](pid_t) { return ran = true; });
  EXPECT_EQ(run.fork_err, EINVAL);
  EXPECT_EQ(run.fork_call, "clone");
  EXPECT_FALSE(ran);
}

TEST(RunInChild, Clone3CanBeTheForkToo) {
  ChildOptions options;
  options.via_clone3 = true;
  const ChildRun run = run_in_child([](int fd) { report(fd, 3, 0); }, options);
  EXPECT_EQ(run.fork_err, 0);
  ASSERT_EQ(run.records.size(), 1u);
  EXPECT_EQ(run.records[0].step, 3);
}

TEST(RunInChild, AHungChildIsKilledAtTheDeadline) {
  ChildOptions options;
  options.timeout = std::chrono::milliseconds(200);
  const ChildRun run = run_in_child(
      [](int fd) {
        report(fd, 0, 0);
        ::pause();
      },
      options);
  EXPECT_TRUE(run.timed_out);
  EXPECT_EQ(run.records.size(), 1u);
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
}

}  // namespace
}  // namespace pysandbox::probe
