// Spawns the real jail on this host (no seccomp here: each layer is checked on its own) and runs
// the project's own shell/Python snippets inside it.
#include "jail/namespace_spawner.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>

#include "base/sys/syscalls.hpp"
#include "jail/sandbox_init.hpp"
#include "jail/tests/run_result.hpp"

namespace pysandbox::jail {
namespace {

constexpr uid_t kUid = 2000900;

using test_support::read_all;
using test_support::RunResult;

JailConfig shell_config(std::string script, bool proc = true) {
  JailConfig c;
  c.executable = "/bin/sh";
  c.argv = {"sh", "-c", std::move(script)};
  c.env = {"PATH=/usr/bin:/bin"};
  c.mounts.ro_paths = default_ro_paths();
  c.mounts.mount_proc = proc;
  c.init_path = PYSANDBOX_INIT_PATH;
  return c;
}

// Runs synchronously; stdout and stderr go to temp files so no pipe can fill up.
RunResult run(const JailConfig& config, RunParams params = {}) {
  RunResult r;
  auto spawner = NamespaceSpawner::create(config);
  EXPECT_TRUE(spawner) << spawner.error().message();
  if (!spawner) return r;
  base::sys::UniqueFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  base::sys::UniqueFd out(::memfd_create("out", MFD_CLOEXEC));
  base::sys::UniqueFd err(::memfd_create("err", MFD_CLOEXEC));
  if (params.host_uid == 0) params.host_uid = params.host_gid = kUid;
  params.fds = {devnull.get(), out.get(), err.get(), devnull.get(), devnull.get()};
  auto spawned = spawner->spawn(params);
  EXPECT_TRUE(spawned) << spawned.error().message();
  if (!spawned) return r;
  const ChannelReport report = read_channel_blocking(spawned->channel.get());
  siginfo_t info{};
  while (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(spawned->pidfd.get()), &info,
                  WEXITED) != 0 &&
         errno == EINTR) {
  }
  if (report.setup_failed) {
    const auto& f = *report.setup_failed;
    r.setup_failure = spawner->describe(SetupFailure{f.step, f.index, f.err});
  }
  // The runner's end, as the sandbox's init saw it; init's own when it could not say.
  if (report.exited) {
    const int status = report.exited->status;
    if (WIFEXITED(status)) {
      r.code = WEXITSTATUS(status);
    } else {
      r.signal = WTERMSIG(status);
    }
  } else if (info.si_code == CLD_EXITED) {
    r.code = info.si_status;
  } else {
    r.signal = info.si_status;
  }
  ::lseek(out.get(), 0, SEEK_SET);
  ::lseek(err.get(), 0, SEEK_SET);
  r.out = read_all(out.get());
  r.err = read_all(err.get());
  return r;
}

TEST(NamespaceSpawner, RunsACommandAndCapturesItsOutput) {
  auto r = run(shell_config("echo hello; echo oops >&2; exit 3"));
  EXPECT_EQ(r.setup_failure, "");
  EXPECT_EQ(r.out, "hello\n");
  EXPECT_EQ(r.err, "oops\n");
  EXPECT_EQ(r.code, 3);
}

TEST(NamespaceSpawner, IsRootOfItsOwnUserNamespaceMappedToTheUnprivilegedUid) {
  auto r = run(shell_config("id -u; id -g; cat /proc/self/uid_map; cat /proc/self/gid_map"));
  EXPECT_EQ(r.out, "0\n0\n         0    2000900          1\n         0    2000900          1\n")
      << r.err;
}

TEST(NamespaceSpawner, RunsUnderItsOwnInitInItsOwnPidNamespaceAndSeesNoHostProcess) {
  auto r =
      run(shell_config("echo $$; cat /proc/1/comm; tr '\\0' ' ' < /proc/1/cmdline; echo; "
                       "ls /proc | grep -E '^[0-9]+$' | wc -l"));
  // pysandbox-init (1), sh itself (2) and the ls/grep/wc pipeline: nothing of the host, and no
  // copy of the process that made the sandbox.
  EXPECT_EQ(r.out.substr(0, r.out.find("\n", r.out.find("\n", 3) + 1) + 1),
            "2\npysandbox-init\npysandbox-init 2 5 1 \n")
      << r.out;
  EXPECT_LT(std::stoi(r.out.substr(r.out.rfind('\n', r.out.size() - 2) + 1)), 7) << r.out;
}

TEST(NamespaceSpawner, HasItsOwnHostname) {
  auto r = run(shell_config("cat /proc/sys/kernel/hostname"));
  EXPECT_EQ(r.out, "sandbox\n");
}

TEST(NamespaceSpawner, HostFilesOutsideTheExposedPathsAreInvisible) {
  const std::string secret = "/root/pysandbox-jail-test-secret";
  { std::ofstream(secret) << "top secret\n"; }
  auto r = run(shell_config("cat " + secret + "; ls /root /home /var /etc/shadow /etc/passwd"));
  ::unlink(secret.c_str());
  EXPECT_EQ(r.out.find("top secret"), std::string::npos);
  EXPECT_NE(r.err.find("No such file"), std::string::npos) << r.err;
  EXPECT_NE(r.code, 0);
}

TEST(NamespaceSpawner, RootIsReadOnlyAndOnlyTmpIsWritable) {
  auto r = run(shell_config(
      "for p in /x /usr/x /etc/x /dev/x; do if touch $p 2>/dev/null; then echo wrote $p; fi; "
      "done; echo data > /tmp/f && cat /tmp/f; grep ' / ' /proc/mounts | cut -d' ' -f4 | "
      "cut -d, -f1"));
  EXPECT_EQ(r.out, "data\nro\n") << r.err;
}

TEST(NamespaceSpawner, TmpIsPrivatePerRun) {
  auto first = run(shell_config("echo one > /tmp/shared && ls /tmp"));
  EXPECT_EQ(first.out, "shared\n");
  auto second = run(shell_config("ls -A /tmp | wc -l"));
  EXPECT_EQ(second.out, "0\n");
}

TEST(NamespaceSpawner, TmpHasTheConfiguredSizeLimit) {
  auto config = shell_config("head -c 3000000 /dev/zero > /tmp/big; echo rc=$?");
  config.mounts.tmpfs_bytes = 1 << 20;
  auto r = run(config);
  EXPECT_EQ(r.out, "rc=1\n") << r.err;
  EXPECT_NE(r.err.find("No space left"), std::string::npos) << r.err;
}

TEST(NamespaceSpawner, DevHasOnlyTheHarmlessDevices) {
  auto r = run(shell_config("ls /dev | tr '\\n' ' '; echo x > /dev/null && echo null-ok"));
  EXPECT_EQ(r.out, "fd null random shm stderr stdin stdout urandom zero null-ok\n") << r.err;
}

TEST(NamespaceSpawner, OnlyTheFiveStandardFdsReachTheSandbox) {
  // The test process has other fds open (gtest's, the spawner's pipes); none may leak.
  base::sys::UniqueFd leaked(::open("/etc/hostname", O_RDONLY));  // deliberately without O_CLOEXEC
  ASSERT_TRUE(leaked);
  auto r = run(shell_config("ls /proc/self/fd | tr '\\n' ' '"));
  // ls's own directory fd shows up as one more.
  EXPECT_EQ(r.out, "0 1 2 3 4 5 ") << r.err;
}

TEST(NamespaceSpawner, HasNoNetworkBeyondADownLoopback) {
  // A listener on the host's loopback must be unreachable from inside.
  base::sys::UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener.get(), 4), 0);
  socklen_t len = sizeof addr;
  ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);

  JailConfig c;
  c.executable = "/usr/bin/python3";
  c.argv = {"python3", "-I", "-c",
            "import socket\n"
            "try:\n"
            "    socket.create_connection(('127.0.0.1', " +
                std::to_string(port) +
                "), timeout=2)\n"
                "    print('connected')\n"
                "except OSError as e:\n"
                "    print('refused', e.errno)\n"};
  c.mounts.ro_paths = default_ro_paths();
  c.init_path = PYSANDBOX_INIT_PATH;
  auto r = run(c);
  EXPECT_EQ(r.out.rfind("refused", 0), 0u) << r.out << r.err;
}

TEST(NamespaceSpawner, RlimitsAreApplied) {
  RunParams p;
  p.limits.open_files = 77;
  p.limits.processes = 33;
  p.limits.file_size = 1 << 20;
  auto r = run(shell_config("grep -E '^Max (open files|processes|core|file size|address)' "
                            "/proc/self/limits | tr -s ' ' | cut -d' ' -f1-5"),
               p);
  EXPECT_EQ(r.out,
            "Max file size 1048576 1048576\nMax core file size 0\nMax processes 33 33 processes\n"
            "Max open files 77 77\nMax address space 268435456 268435456\n")
      << r.err;
}

TEST(NamespaceSpawner, CapabilitiesAreGoneAfterExecve) {
  auto r =
      run(shell_config("grep -E '^Cap(Prm|Eff|Bnd)' /proc/self/status; "
                       "grep NoNewPrivs /proc/self/status"));
  EXPECT_EQ(r.out,
            "CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n"
            "CapBnd:\t0000000000000000\nNoNewPrivs:\t1\n")
      << r.err;
}

TEST(NamespaceSpawner, EnvironmentIsOnlyWhatTheConfigGives) {
  ::setenv("PYSANDBOX_TEST_SECRET", "hunter2", 1);
  auto r = run(shell_config("env | sort"));
  EXPECT_EQ(r.out.find("hunter2"), std::string::npos);
  EXPECT_NE(r.out.find("PATH=/usr/bin:/bin"), std::string::npos) << r.out;
}

TEST(NamespaceSpawner, SetupFailureIsReportedWithStepAndErrno) {
  auto config = shell_config("true");
  config.executable = "/usr/bin/definitely-not-here";
  auto r = run(config);
  EXPECT_EQ(r.setup_failure, "execve #0: No such file or directory");
  EXPECT_EQ(r.code, 127);
}

TEST(NamespaceSpawner, MountFailureNamesTheOperation) {
  auto config = shell_config("true");
  config.mounts.staging_dir = "/definitely-not-a-dir";
  auto r = run(config);
  EXPECT_NE(r.setup_failure.find("mount: mount tmpfs on /definitely-not-a-dir"), std::string::npos)
      << r.setup_failure;
}

}  // namespace
}  // namespace pysandbox::jail
