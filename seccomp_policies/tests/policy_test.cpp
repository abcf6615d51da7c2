#include "seccomp_policies/policy.hpp"

#include <gtest/gtest.h>
#include <linux/filter.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>

#include "seccomp_policies/tests/child.hpp"

namespace pysandbox::seccomp_policies {
namespace {

using testing::ChildResult;
using testing::errno_of;
using testing::run_probe;

TEST(PolicyTest, DefaultPolicyLoadsAndCompiles) {
  const Policy policy = Policy::load_file(PYSANDBOX_TEST_DEFAULT_POLICY);
  EXPECT_EQ(policy.default_action(), (Action{Action::Kind::kErrno, ENOSYS}));
  EXPECT_GT(policy.rules().size(), 100u);
  const BpfProgram program = policy.compile();
  EXPECT_GT(program.instruction_count(), 0u);
  EXPECT_LE(program.instruction_count(), static_cast<std::size_t>(BPF_MAXINSNS));
}

// The explicit refusals the sandbox promises, as data (enforcement_test probes some for real).
TEST(PolicyTest, DefaultPolicyRefusesDangerousSyscallsWithEperm) {
  const Policy policy = Policy::load_file(PYSANDBOX_TEST_DEFAULT_POLICY);
  const char* refused[] = {"mount",
                           "umount2",
                           "pivot_root",
                           "chroot",
                           "ptrace",
                           "process_vm_readv",
                           "process_vm_writev",
                           "kexec_load",
                           "kexec_file_load",
                           "init_module",
                           "finit_module",
                           "delete_module",
                           "bpf",
                           "perf_event_open",
                           "keyctl",
                           "add_key",
                           "request_key",
                           "userfaultfd",
                           "io_uring_setup",
                           "io_uring_enter",
                           "io_uring_register",
                           "open_by_handle_at",
                           "name_to_handle_at",
                           "unshare",
                           "setns",
                           "acct",
                           "swapon",
                           "swapoff",
                           "reboot",
                           "settimeofday",
                           "clock_settime",
                           "adjtimex",
                           "syslog",
                           "quotactl",
                           "mknod",
                           "mknodat",
                           "fanotify_init",
                           "lookup_dcookie",
                           "move_mount",
                           "open_tree",
                           "fsopen",
                           "fsmount",
                           "fspick",
                           "mount_setattr",
                           "iopl",
                           "ioperm",
                           "vhangup",
                           "nfsservctl"};
  const Action eperm{Action::Kind::kErrno, EPERM};
  for (const char* name : refused) {
    const auto it = std::find_if(policy.rules().begin(), policy.rules().end(),
                                 [&](const Rule& r) { return r.syscall == name; });
    ASSERT_NE(it, policy.rules().end()) << name;
    EXPECT_EQ(it->action, eperm) << name;
    EXPECT_TRUE(it->conditions.empty()) << name;
  }
}

TEST(PolicyTest, LoadFileReportsPathAndReason) {
  try {
    Policy::load_file("/nonexistent/pysandbox.policy");
    FAIL() << "no error";
  } catch (const PolicyError& e) {
    EXPECT_EQ(std::string(e.what()),
              "/nonexistent/pysandbox.policy: cannot open: No such file or directory");
  }
}

TEST(PolicyTest, LoadFileErrorsNameTheFile) {
  try {
    Policy::load_file("/proc/self/cmdline");  // readable, not a policy
    FAIL() << "no error";
  } catch (const PolicyError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("/proc/self/cmdline:1: ", 0), 0u) << e.what();
  }
}

TEST(PolicyTest, RulesWithTheDefaultActionCompileToNothing) {
  const BpfProgram plain = Policy::parse("default errno ENOSYS\nallow read\n", "t").compile();
  const BpfProgram padded =
      Policy::parse("default errno ENOSYS\nallow read\nerrno ENOSYS clone3 write\n", "t").compile();
  EXPECT_EQ(plain.instructions().size(), padded.instructions().size());
}

// Each action and operator, enforced by the kernel. Distinct errno values show which rule fired.
BpfProgram operators_program() {
  return Policy::parse(
             "default allow\n"
             "errno 101 getpgid if arg0 == 0x1000000000\n"
             "errno 102 getsid if arg0 != 7\n"
             "errno 103 sched_getscheduler if arg0 < 10\n"
             "errno 104 sched_get_priority_max if arg0 <= 10\n"
             "errno 105 sched_get_priority_min if arg0 > 10\n"
             "errno 106 getpriority if arg0 >= 10 and arg1 == 3\n"
             "errno 107 sched_rr_get_interval if arg0 & 0xf0 == 0x30\n"
             "errno 108 ioprio_get if arg1 & 0xff != 0x12\n",
             "operators")
      .compile();
}

int expect_errno(long result, int expected) {
  const int got = errno_of(result);
  return got == expected ? 0 : 1;
}

TEST(PolicyTest, OperatorsAreEnforced) {
  const BpfProgram program = operators_program();
  const ChildResult r = run_probe(&program, [] {
    int failures = 0;
    failures += expect_errno(syscall(SYS_getpgid, 0x1000000000L), 101);
    failures += expect_errno(syscall(SYS_getpgid, 0L), 0);
    failures += expect_errno(syscall(SYS_getsid, 0L), 102);
    failures += errno_of(syscall(SYS_getsid, 7L)) == 102;
    failures += expect_errno(syscall(SYS_sched_getscheduler, 0L), 103);
    failures += errno_of(syscall(SYS_sched_getscheduler, 10L)) == 103;
    failures += expect_errno(syscall(SYS_sched_get_priority_max, 10L), 104);
    failures += expect_errno(syscall(SYS_sched_get_priority_max, 11L), EINVAL);
    failures += expect_errno(syscall(SYS_sched_get_priority_min, 11L), 105);
    failures += expect_errno(syscall(SYS_sched_get_priority_min, 10L), EINVAL);
    failures += expect_errno(syscall(SYS_getpriority, 10L, 3L), 106);
    failures += expect_errno(syscall(SYS_getpriority, 10L, 4L), EINVAL);
    failures += expect_errno(syscall(SYS_getpriority, 9L, 3L), EINVAL);
    failures += expect_errno(syscall(SYS_sched_rr_get_interval, 0x35L, nullptr), 107);
    failures += errno_of(syscall(SYS_sched_rr_get_interval, 0x45L, nullptr)) == 107;
    failures += expect_errno(syscall(SYS_ioprio_get, 1L, 0x13L), 108);
    failures += errno_of(syscall(SYS_ioprio_get, 1L, 0x112L)) == 108;
    failures += errno_of(syscall(SYS_ioprio_get, 1L, 0x100000012L)) == 108;
    return failures;
  });
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe();
}

TEST(PolicyTest, KillAndTrapActionsEndTheProcessWithSigsys) {
  for (const char* action : {"kill_process", "kill_thread", "trap"}) {
    const BpfProgram program =
        Policy::parse(std::string("default allow\n") + action + " getppid\n", "t").compile();
    const ChildResult r = run_probe(&program, [] {
      syscall(SYS_getppid);
      return 3;
    });
    EXPECT_FALSE(r.exited) << action << ": " << r.describe();
    EXPECT_EQ(r.signal, SIGSYS) << action;
  }
}

TEST(PolicyTest, LogActionAllows) {
  const BpfProgram program = Policy::parse("default allow\nlog getppid\n", "t").compile();
  const ChildResult r =
      run_probe(&program, [] { return syscall(SYS_getppid) == getppid() ? 0 : 1; });
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe();
}

}  // namespace
}  // namespace pysandbox::seccomp_policies
