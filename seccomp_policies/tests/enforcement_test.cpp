// The default policy, enforced by the kernel in a fork()ed child (the test binary is single-
// threaded). Each probe returns errno (0 = success); the parent compares.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/keyctl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "seccomp_policies/policy.hpp"
#include "seccomp_policies/tests/child.hpp"

namespace pysandbox::seccomp_policies {
namespace {

using testing::ChildResult;
using testing::errno_of;
using testing::run_probe;

// Set before fork; the probes (captureless lambdas) read them in the child.
unsigned long g_clone_flags = 0;
unsigned long g_ioctl_request = 0;

class EnforcementTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    policy_ = std::make_unique<Policy>(Policy::load_file(PYSANDBOX_TEST_DEFAULT_POLICY));
    program_ = std::make_unique<BpfProgram>(policy_->compile());
  }
  static void TearDownTestSuite() {
    program_.reset();
    policy_.reset();
  }

  static ChildResult filtered(int (*probe)()) { return run_probe(program_.get(), probe); }
  static ChildResult unfiltered(int (*probe)()) { return run_probe(nullptr, probe); }

  static void expect_exit(const ChildResult& r, int code) {
    EXPECT_TRUE(r.exited && r.exit_code == code)
        << "expected errno " << code << " (" << std::strerror(code) << "), " << r.describe()
        << (r.exited ? std::string(" (") + std::strerror(r.exit_code) + ")" : "");
  }

  static std::unique_ptr<Policy> policy_;
  static std::unique_ptr<BpfProgram> program_;
};

std::unique_ptr<Policy> EnforcementTest::policy_;
std::unique_ptr<BpfProgram> EnforcementTest::program_;

// A raw clone that, if it succeeds, reaps its child and reports success.
int clone_probe() {
  const long pid = syscall(SYS_clone, g_clone_flags, 0L, 0L, 0L, 0L);
  if (pid == 0) _exit(0);
  if (pid < 0) return errno_of(pid);
  waitpid(static_cast<pid_t>(pid), nullptr, __WALL);
  return 0;
}

int mount_probe() {
  return errno_of(syscall(SYS_mount, "none", "/nonexistent-pysandbox", "tmpfs", 0L, nullptr));
}

int socket_inet_probe() { return errno_of(syscall(SYS_socket, AF_INET, SOCK_STREAM, 0)); }

int personality_probe() { return errno_of(syscall(SYS_personality, PER_LINUX32)); }

int ptrace_probe() { return errno_of(syscall(SYS_ptrace, PTRACE_TRACEME, 0L, 0L, 0L)); }

int ioctl_probe() {
  int fds[2];
  if (pipe(fds) != 0) return 200;
  char c = 'x';
  return errno_of(syscall(SYS_ioctl, fds[0], g_ioctl_request, &c));
}

int x32_getpid_probe() { return errno_of(syscall(__X32_SYSCALL_BIT | __NR_getpid)); }

TEST_F(EnforcementTest, MountIsRefused) {
  expect_exit(filtered(mount_probe), EPERM);
  if (geteuid() == 0) expect_exit(unfiltered(mount_probe), ENOENT);  // the probe can tell
}

TEST_F(EnforcementTest, UnshareIsRefused) {
  expect_exit(filtered([] { return errno_of(syscall(SYS_unshare, CLONE_NEWUSER)); }), EPERM);
  expect_exit(filtered([] { return errno_of(syscall(SYS_unshare, CLONE_NEWNS)); }), EPERM);
}

TEST_F(EnforcementTest, CloneWithAnyNamespaceFlagIsRefused) {
  const unsigned long namespace_flags[] = {CLONE_NEWNS,  CLONE_NEWCGROUP, CLONE_NEWUTS,
                                           CLONE_NEWIPC, CLONE_NEWUSER,   CLONE_NEWPID,
                                           CLONE_NEWNET, CLONE_NEWTIME};
  unsigned long all = 0;
  for (const unsigned long flag : namespace_flags) {
    all |= flag;
    g_clone_flags = flag | SIGCHLD;
    expect_exit(filtered(clone_probe), EPERM);
  }
  EXPECT_EQ(all, 0x7E020080ul);
  // Junk in the upper half (ignored by the kernel) changes nothing.
  g_clone_flags = (1ul << 32) | CLONE_NEWUSER | SIGCHLD;
  expect_exit(filtered(clone_probe), EPERM);
  if (geteuid() == 0) {
    g_clone_flags = CLONE_NEWUSER | SIGCHLD;
    expect_exit(unfiltered(clone_probe), 0);
  }
}

TEST_F(EnforcementTest, PlainCloneForkAndThreadsWork) {
  g_clone_flags = SIGCHLD;
  expect_exit(filtered(clone_probe), 0);
  expect_exit(filtered([] {
                const pid_t pid = fork();
                if (pid == 0) _exit(42);
                int status = 0;
                if (pid < 0 || waitpid(pid, &status, 0) != pid) return 1;
                return WIFEXITED(status) && WEXITSTATUS(status) == 42 ? 0 : 2;
              }),
              0);
  // glibc tries clone3 first (ENOSYS) and falls back to clone.
  expect_exit(filtered([] {
                int value = 0;
                std::thread([&value] { value = 7; }).join();
                return value == 7 ? 0 : 1;
              }),
              0);
}

TEST_F(EnforcementTest, Clone3GetsEnosys) {
  expect_exit(filtered([] {
                clone_args args{};
                args.exit_signal = SIGCHLD;
                const long pid = syscall(SYS_clone3, &args, sizeof args);
                if (pid == 0) _exit(0);
                if (pid > 0) waitpid(static_cast<pid_t>(pid), nullptr, 0);
                return errno_of(pid);
              }),
              ENOSYS);
}

TEST_F(EnforcementTest, PtraceIsRefused) {
  expect_exit(filtered(ptrace_probe), EPERM);
  expect_exit(unfiltered(ptrace_probe), 0);
}

TEST_F(EnforcementTest, KernelAttackSurfaceIsRefused) {
  expect_exit(filtered([] { return errno_of(syscall(SYS_bpf, 0L, nullptr, 0L)); }), EPERM);
  expect_exit(
      filtered([] {
        return errno_of(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0L));
      }),
      EPERM);
  expect_exit(filtered([] { return errno_of(syscall(SYS_io_uring_setup, 1L, nullptr)); }), EPERM);
  expect_exit(
      filtered([] { return errno_of(syscall(SYS_perf_event_open, nullptr, 0, -1, -1, 0)); }),
      EPERM);
  expect_exit(filtered([] { return errno_of(syscall(SYS_userfaultfd, 0L)); }), EPERM);
}

TEST_F(EnforcementTest, OnlyUnixSocketsMayBeCreated) {
  expect_exit(filtered(socket_inet_probe), EPERM);
  expect_exit(unfiltered(socket_inet_probe), 0);
  expect_exit(filtered([] { return errno_of(syscall(SYS_socket, AF_INET6, SOCK_DGRAM, 0)); }),
              EPERM);
  expect_exit(filtered([] { return errno_of(syscall(SYS_socket, AF_NETLINK, SOCK_RAW, 0)); }),
              EPERM);
  // The kernel reads an int: 0x1_00000001 would be AF_UNIX, and is refused anyway.
  expect_exit(filtered([] { return errno_of(syscall(SYS_socket, 0x100000001L, SOCK_STREAM, 0)); }),
              EPERM);
  expect_exit(filtered([] { return errno_of(syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0)); }), 0);
  expect_exit(filtered([] {
                int sv[2];
                return errno_of(syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, sv));
              }),
              0);
  expect_exit(filtered([] {
                int sv[2];
                return errno_of(syscall(SYS_socketpair, AF_INET, SOCK_STREAM, 0, sv));
              }),
              EPERM);
}

TEST_F(EnforcementTest, PersonalityCanOnlyBeRead) {
  expect_exit(filtered(personality_probe), EPERM);
  expect_exit(unfiltered(personality_probe), 0);
  expect_exit(filtered([] { return errno_of(syscall(SYS_personality, 0xffffffffL)); }), 0);
}

TEST_F(EnforcementTest, TiocstiIsRefusedWhateverTheUpperBits) {
  // On a pipe, an allowed ioctl reaches the kernel and fails with ENOTTY.
  g_ioctl_request = TIOCSTI;
  expect_exit(filtered(ioctl_probe), EPERM);
  expect_exit(unfiltered(ioctl_probe), ENOTTY);
  g_ioctl_request = (0xdeadul << 32) | TIOCSTI;
  expect_exit(filtered(ioctl_probe), EPERM);
  g_ioctl_request = TCGETS;
  expect_exit(filtered(ioctl_probe), ENOTTY);
  g_ioctl_request = (1ul << 32) | TCGETS;  // upper bits ignored, as the kernel does
  expect_exit(filtered(ioctl_probe), ENOTTY);
}

// The allow rule is 32 disjoint masked comparisons; none may leave a gap. The probes are the
// neighbours of TIOCSTI in every bit (each alternative's edge) and the whole 0x54xx tty range.
TEST_F(EnforcementTest, EveryOtherIoctlReachesTheKernel) {
  expect_exit(filtered([] {
                int fds[2];
                if (pipe(fds) != 0) return 200;
                std::vector<unsigned long> requests;
                for (unsigned bit = 0; bit < 32; ++bit) requests.push_back(TIOCSTI ^ (1ul << bit));
                for (unsigned long r = 0x5400; r < 0x5500; ++r) {
                  if (r != TIOCSTI) requests.push_back(r);
                }
                for (std::size_t i = 0; i < requests.size(); ++i) {
                  alignas(8) char buffer[256] = {};
                  const int err = errno_of(syscall(SYS_ioctl, fds[0], requests[i], buffer));
                  if (err == EPERM || err == ENOSYS) return 1 + static_cast<int>(i % 200);
                }
                return 0;
              }),
              0);
}

TEST_F(EnforcementTest, UnlistedSyscallGetsTheDefaultErrno) {
  // mlock is harmless but not on the list; make sure the policy still leaves it out.
  const auto& rules = policy_->rules();
  ASSERT_TRUE(
      std::none_of(rules.begin(), rules.end(), [](const Rule& r) { return r.syscall == "mlock"; }));
  ASSERT_EQ(policy_->default_action().kind, Action::Kind::kErrno);
  const int expected = policy_->default_action().errno_value;
  const auto probe = [] {
    static char page[4096];
    return errno_of(syscall(SYS_mlock, page, sizeof page));
  };
  expect_exit(filtered(probe), expected);
  expect_exit(unfiltered(probe), 0);
}

TEST_F(EnforcementTest, GetpidWorks) {
  expect_exit(filtered([] { return syscall(SYS_getpid) == getpid() ? 0 : 1; }), 0);
}

TEST_F(EnforcementTest, X32SyscallKillsTheProcess) {
  const ChildResult r = filtered(x32_getpid_probe);
  EXPECT_FALSE(r.exited) << r.describe();
  EXPECT_EQ(r.signal, SIGSYS) << r.describe();
  EXPECT_TRUE(unfiltered(x32_getpid_probe).exited);
}

TEST_F(EnforcementTest, I386SyscallKillsTheProcess) {
  const ChildResult r = filtered([] {
    long result = 20;  // __NR_getpid on i386
    asm volatile("int $0x80" : "+a"(result) : : "memory");
    return 0;
  });
  if (r.signal == SIGSEGV) GTEST_SKIP() << "this kernel has no IA-32 emulation";
  EXPECT_FALSE(r.exited) << r.describe();
  EXPECT_EQ(r.signal, SIGSYS) << r.describe();
}

}  // namespace
}  // namespace pysandbox::seccomp_policies
