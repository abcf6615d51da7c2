// The compiler's fallback for kernels (gVisor) that do not report SECCOMP_RET_KILL_PROCESS.
#include "seccomp_policies/compiler.hpp"

#include <gtest/gtest.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <string>
#include <vector>

#include "seccomp_policies/policy.hpp"
#include "seccomp_policies/tests/child.hpp"

namespace pysandbox::seccomp_policies {
namespace {

bool returns(const BpfProgram& program, std::uint32_t value) {
  return std::any_of(
      program.instructions().begin(), program.instructions().end(),
      [&](const sock_filter& i) { return i.code == (BPF_RET | BPF_K) && i.k == value; });
}

// Makes libseccomp believe the kernel lacks SECCOMP_GET_ACTION_AVAIL (API level 2), as under
// gVisor 2022-12, for the lifetime of the object.
class PretendOldKernel {
 public:
  PretendOldKernel() : saved_(seccomp_api_get()) { ok_ = seccomp_api_set(2) == 0; }
  ~PretendOldKernel() { seccomp_api_set(saved_); }
  bool ok() const { return ok_; }

 private:
  unsigned saved_;
  bool ok_ = false;
};

TEST(CompilerTest, KillProcessIsAvailableOnThisKernel) {
  EXPECT_TRUE(kill_process_available());
  const BpfProgram program = Policy::parse("default allow\nkill_process getppid\n", "t").compile();
  EXPECT_TRUE(returns(program, SECCOMP_RET_KILL_PROCESS));
}

TEST(CompilerTest, WithoutKillProcessBadArchAndKillRulesBecomeKillThread) {
  PretendOldKernel old;
  ASSERT_TRUE(old.ok());
  ASSERT_FALSE(kill_process_available());
  const BpfProgram program = Policy::parse("default allow\nkill_process getppid\n", "t").compile();
  EXPECT_FALSE(returns(program, SECCOMP_RET_KILL_PROCESS));
  EXPECT_TRUE(returns(program, SECCOMP_RET_KILL_THREAD));
  // Still enforced: the call never runs.
  const auto r = testing::run_probe(&program, [] {
    syscall(SYS_getppid);
    return 3;
  });
  EXPECT_FALSE(r.exited) << r.describe();
  EXPECT_EQ(r.signal, SIGSYS);
}

TEST(CompilerTest, DefaultPolicyCompilesWithoutKillProcess) {
  PretendOldKernel old;
  ASSERT_TRUE(old.ok());
  const BpfProgram program = Policy::load_file(PYSANDBOX_TEST_DEFAULT_POLICY).compile();
  EXPECT_GT(program.instruction_count(), 10u);
  EXPECT_FALSE(returns(program, SECCOMP_RET_KILL_PROCESS));
}

// rlimit.policy is default.policy with socket() refused for every family (see its header): the
// two must not drift apart otherwise.
// The rlimit policy is the default one but for socket() (no network namespace to contain it) and
// fd passing (no fds in flight: gVisor does not collect unreachable ones).
TEST(CompilerTest, RlimitPolicyIsTheDefaultPolicyWithoutSocketAndFdPassing) {
  std::string rlimit_path = PYSANDBOX_TEST_DEFAULT_POLICY;
  rlimit_path.replace(rlimit_path.rfind("default.policy"), 14, "rlimit.policy");
  const Policy base = Policy::load_file(PYSANDBOX_TEST_DEFAULT_POLICY);
  const Policy rlimit = Policy::load_file(rlimit_path);
  EXPECT_EQ(base.default_action(), rlimit.default_action());
  const auto key = [](const Rule& r) {
    // Appended piece by piece: chained std::string operator+ draws a false -Wrestrict from
    // GCC 12 at -O3 (GCC bug 105329).
    std::string k = r.syscall;
    const auto add = [&k](char separator, const std::string& piece) {
      k += separator;
      k += piece;
    };
    if (r.optional) k += '?';
    add(' ', std::to_string(static_cast<int>(r.action.kind)));
    add('/', std::to_string(r.action.errno_value));
    for (const auto& c : r.conditions) {
      add(' ', std::to_string(c.arg));
      add(':', std::to_string(static_cast<int>(c.op)));
      add(':', std::to_string(c.mask));
      add(':', std::to_string(c.value));
    }
    return k;
  };
  const std::set<std::string> fd_passing = {"sendmsg", "recvmsg", "sendmmsg", "recvmmsg"};
  std::vector<std::string> a, b;
  for (const auto& r : base.rules()) {
    if (r.syscall != "socket" && !fd_passing.contains(r.syscall)) a.push_back(key(r));
  }
  std::vector<const Rule*> socket_rules;
  for (const auto& r : rlimit.rules()) {
    if (r.syscall == "socket") {
      socket_rules.push_back(&r);
    } else if (fd_passing.contains(r.syscall)) {
      EXPECT_EQ(r.action.kind, Action::Kind::kErrno) << r.syscall;
      EXPECT_EQ(r.action.errno_value, EPERM) << r.syscall;
    } else {
      b.push_back(key(r));
    }
  }
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  EXPECT_EQ(a, b);
  ASSERT_EQ(socket_rules.size(), 1u);
  EXPECT_TRUE(socket_rules[0]->conditions.empty());
  EXPECT_EQ(socket_rules[0]->action.kind, Action::Kind::kErrno);
  EXPECT_EQ(socket_rules[0]->action.errno_value, EPERM);
  // And it holds: socket() refused whatever the family, socketpair(AF_UNIX) allowed.
  const BpfProgram program = rlimit.compile();
  const auto r = testing::run_probe(&program, [] {
    int failures = 0;
    for (long family : {1L, 2L, 10L, 16L, 0x100000001L}) {
      failures += testing::errno_of(syscall(SYS_socket, family, 1L, 0L)) != EPERM;
    }
    int pair[2];
    failures += syscall(SYS_socketpair, 1L, 1L, 0L, pair) != 0;
    return failures;
  });
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe();
}

}  // namespace
}  // namespace pysandbox::seccomp_policies
