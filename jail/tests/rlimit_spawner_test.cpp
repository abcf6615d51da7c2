// The rlimit jail on this host: plain fork, own session, dedicated uid, scratch directory,
// rlimits, fds 0..4 only (no seccomp here: the filter is checked on its own), and the uid-wide
// kill that clears a run's leftovers.
#include "jail/rlimit_spawner.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "base/sys/syscalls.hpp"
#include "jail/sandbox_init.hpp"
#include "jail/scratch_dir.hpp"
#include "jail/tests/run_result.hpp"
#include "jail/uid_sweep.hpp"

namespace pysandbox::jail {
namespace {

constexpr uid_t kUid = 2000950;

using test_support::read_all;
using test_support::RunResult;

RlimitJailConfig shell(std::string script) {
  RlimitJailConfig c;
  c.executable = "/bin/sh";
  c.argv = {"sh", "-c", std::move(script)};
  c.env = {"PATH=/usr/bin:/bin", "HOME=/nonexistent"};
  c.init_path = PYSANDBOX_INIT_PATH;
  return c;
}

// The first record on a run's channel: kRunning once its runner has execve'd.
ChannelRecord first_record(int channel) {
  ChannelRecord r;
  std::size_t got = 0;
  while (got < sizeof r) {
    const ssize_t n = ::read(channel, reinterpret_cast<char*>(&r) + got, sizeof r - got);
    if (n <= 0 && !(n < 0 && errno == EINTR)) break;
    if (n > 0) got += static_cast<std::size_t>(n);
  }
  return r;
}

class RlimitSpawnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto root = ScratchRoot::create("/tmp/pysandbox-jail-test", /*shared=*/true);
    ASSERT_TRUE(root) << root.error().message();
    root_.emplace(std::move(*root));
  }

  RlimitRunParams params(uid_t uid = kUid) {
    RlimitRunParams p;
    p.uid = p.gid = uid;
    p.cwd = root_->path() + "/" + ScratchRoot::new_run_name();
    p.create_cwd = true;  // by the child, as the run's uid
    p.env = {"HOME=" + p.cwd};
    return p;
  }

  // Runs synchronously; stdout and stderr go to memfds so no pipe can fill up.
  RunResult run(const RlimitJailConfig& config, RlimitRunParams p) {
    RunResult r;
    auto spawner = RlimitSpawner::create(config);
    EXPECT_TRUE(spawner);
    if (!spawner) return r;
    base::sys::UniqueFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    base::sys::UniqueFd out(::memfd_create("out", MFD_CLOEXEC));
    base::sys::UniqueFd err(::memfd_create("err", MFD_CLOEXEC));
    p.fds = {devnull.get(), out.get(), err.get(), devnull.get(), devnull.get()};
    auto spawned = spawner->spawn(p);
    EXPECT_TRUE(spawned) << spawned.error().message();
    if (!spawned) return r;
    const ChannelReport report = read_channel_blocking(spawned->channel.get());
    auto status = base::sys::wait4_blocking(spawned->pid);
    EXPECT_TRUE(status);
    (void)kill_all_of_uid(p.uid, p.gid);
    if (p.create_cwd && !report.setup_failed) {
      const std::string name = p.cwd.substr(p.cwd.rfind('/') + 1);
      EXPECT_TRUE(remove_as_uid(p.uid, p.gid, root_->fd(), {name}, {}));
      EXPECT_NE(::access(p.cwd.c_str(), F_OK), 0) << p.cwd;
    }
    if (report.setup_failed) {
      const auto& f = *report.setup_failed;
      r.setup_failure = RlimitSpawner::describe(SetupFailure{f.step, f.index, f.err});
    }
    // The runner's end as its init saw it; init's own when it could not say.
    if (report.exited && WIFEXITED(report.exited->status)) {
      r.code = WEXITSTATUS(report.exited->status);
    } else if (report.exited) {
      r.signal = WTERMSIG(report.exited->status);
    } else {
      r.code = status->code;
      r.signal = status->signal;
    }
    ::lseek(out.get(), 0, SEEK_SET);
    ::lseek(err.get(), 0, SEEK_SET);
    r.out = read_all(out.get());
    r.err = read_all(err.get());
    return r;
  }

  std::optional<ScratchRoot> root_;
};

TEST_F(RlimitSpawnerTest, RunsAsTheDedicatedUidWithoutSupplementaryGroups) {
  auto r =
      run(shell("id -u; id -g; id -G; grep -E '^(Uid|Gid|Groups)' /proc/self/status"), params());
  EXPECT_EQ(r.out,
            "2000950\n2000950\n2000950\nUid:\t2000950\t2000950\t2000950\t2000950\n"
            "Gid:\t2000950\t2000950\t2000950\t2000950\nGroups:\t \n")
      << r.err << r.setup_failure;
  EXPECT_EQ(r.code, 0);
}

TEST_F(RlimitSpawnerTest, RunsInItsInitsOwnSessionAndProcessGroup) {
  // Fields 4, 5 and 6 of /proc/self/stat (ppid, pgrp, session), field 2 (comm has no spaces
  // here): its parent is the run's init, which leads the session and the group.
  auto r = run(shell("read pid comm state ppid pgrp sid rest < /proc/$$/stat; "
                     "[ $pgrp = $ppid ] && [ $sid = $ppid ] && cat /proc/$ppid/comm"),
               params());
  EXPECT_EQ(r.out, "pysandbox-init\n") << r.err;
}

TEST_F(RlimitSpawnerTest, StartsInItsScratchDirectoryWithTheRunsEnvironment) {
  ::setenv("PYSANDBOX_TEST_SECRET", "hunter2", 1);
  auto p = params();
  auto r = run(shell("pwd; env | sort; stat -c '%a %u' ."), p);
  EXPECT_EQ(r.out,
            p.cwd + "\nHOME=" + p.cwd + "\nPATH=/usr/bin:/bin\nPWD=" + p.cwd + "\n700 2000950\n")
      << r.err;
}

TEST_F(RlimitSpawnerTest, RlimitsAreApplied) {
  auto p = params();
  p.limits.open_files = 77;
  p.limits.processes = 33;
  p.limits.file_size = 1 << 20;
  auto r = run(shell("grep -E '^Max (open files|processes|core|file size|address|stack)' "
                     "/proc/self/limits | tr -s ' ' | cut -d' ' -f1-5"),
               p);
  EXPECT_EQ(r.out,
            "Max file size 1048576 1048576\nMax stack size 8388608 8388608\n"
            "Max core file size 0\nMax processes 33 33 processes\n"
            "Max open files 77 77\nMax address space 268435456 268435456\n")
      << r.err;
}

TEST_F(RlimitSpawnerTest, HasNoCapabilitiesAndNoNewPrivs) {
  auto r = run(shell("grep -E '^(Cap(Prm|Eff|Bnd|Amb)|NoNewPrivs)' /proc/self/status"), params());
  EXPECT_EQ(r.out,
            "CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n"
            "CapBnd:\t0000000000000000\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\n")
      << r.err;
}

TEST_F(RlimitSpawnerTest, OnlyTheFiveStandardFdsCrossExecve) {
  base::sys::UniqueFd leaked(::open("/etc/hostname", O_RDONLY));  // deliberately without O_CLOEXEC
  ASSERT_TRUE(leaked);
  auto r = run(shell("ls /proc/self/fd | tr '\\n' ' '"), params());
  EXPECT_EQ(r.out, "0 1 2 3 4 5 ") << r.err;  // 5: ls's own directory fd
}

TEST_F(RlimitSpawnerTest, CannotReadRootOnlyFilesOrWriteOutsideItsDirectory) {
  const std::string secret = "/root/pysandbox-rlimit-jail-test-secret";
  {
    base::sys::UniqueFd fd(::open(secret.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    ASSERT_TRUE(fd);
    ASSERT_EQ(::write(fd.get(), "top\n", 4), 4);
  }
  auto r = run(shell("cat " + secret +
                     " /etc/shadow 2>/dev/null; "
                     "for p in /x /usr/x /etc/x /root/x /var/x; do "
                     "touch $p 2>/dev/null && echo wrote $p; done; echo done"),
               params());
  ::unlink(secret.c_str());
  EXPECT_EQ(r.out, "done\n") << r.err;
}

TEST_F(RlimitSpawnerTest, SetupFailureIsReportedWithStepAndErrno) {
  auto p = params();
  p.cwd = "/definitely/not/here";
  p.create_cwd = false;
  auto r = run(shell("true"), p);
  EXPECT_EQ(r.setup_failure, "chdir #0: No such file or directory");
  // A run directory someone created first is not taken over.
  p = params();
  ASSERT_EQ(::mkdir(p.cwd.c_str(), 0777), 0);
  r = run(shell("true"), p);
  EXPECT_EQ(r.setup_failure, "chdir #1: File exists");
  ::rmdir(p.cwd.c_str());
  auto config = shell("true");
  config.executable = "/usr/bin/definitely-not-here";
  r = run(config, params());
  EXPECT_EQ(r.setup_failure, "execve #0: No such file or directory");
}

TEST_F(RlimitSpawnerTest, WithNamespacesItSeesOnlyItselfAPrivateTmpAndNoNetwork) {
  auto config = shell(
      "echo $$; ls /proc | grep -cE '^[0-9]+$'; hostname; ls -A /tmp | wc -l; "
      "stat -c '%a' /tmp; touch /tmp/mine && echo wrote; "
      "grep -c ' lo' /proc/net/dev; cat /sys/class/net/lo/operstate 2>/dev/null || true");
  config.namespaces.clone_flags =
      CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS;
  config.namespaces.mount_proc = true;
  config.namespaces.tmpfs_dirs = {"/tmp"};
  auto p = params();
  p.cwd = "/tmp";
  p.create_cwd = false;
  auto r = run(config, p);
  // init (pid 1), sh (pid 2) and the pipeline's few processes; the fresh /tmp is empty, mode
  // 1777.
  EXPECT_EQ(r.out.substr(0, 2), "2\n") << r.out << r.err << r.setup_failure;
  EXPECT_LT(std::stoi(r.out.substr(2)), 7) << r.out;
  EXPECT_NE(r.out.find("sandbox\n0\n1777\nwrote\n1\n"), std::string::npos) << r.out;
  // Nothing of it reached the host's /tmp.
  EXPECT_NE(::access("/tmp/mine", F_OK), 0);
}

TEST_F(RlimitSpawnerTest, NamespaceOptionsAreValidated) {
  auto config = shell("true");
  config.namespaces.mount_proc = true;  // without CLONE_NEWNS and CLONE_NEWPID
  EXPECT_FALSE(RlimitSpawner::create(config));
  config = shell("true");
  config.namespaces.clone_flags = CLONE_NEWUSER;  // not one of ours
  EXPECT_FALSE(RlimitSpawner::create(config));
  config = shell("true");
  config.namespaces.clone_flags = CLONE_NEWNS;
  config.namespaces.tmpfs_dirs = {"relative"};
  EXPECT_FALSE(RlimitSpawner::create(config));
}

TEST_F(RlimitSpawnerTest, KillAllOfUidTakesDaemonsAndSparesOtherUids) {
  // A process of kUid, and a bystander of kUid + 1.
  auto spawner = RlimitSpawner::create(shell("exec sleep 60"));
  ASSERT_TRUE(spawner);
  base::sys::UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  auto daemon_params = params();
  daemon_params.fds = RunFds::all(devnull.get());
  auto bystander_params = params(kUid + 1);
  bystander_params.fds = daemon_params.fds;
  auto daemon = spawner->spawn(daemon_params);
  auto bystander = spawner->spawn(bystander_params);
  ASSERT_TRUE(daemon && bystander);
  // Both are past execve once their channels say so; each is its init and its runner.
  EXPECT_EQ(first_record(daemon->channel.get()).kind, static_cast<int>(RecordKind::kRunning));
  EXPECT_EQ(first_record(bystander->channel.get()).kind, static_cast<int>(RecordKind::kRunning));
  EXPECT_EQ(processes_of_uid(kUid).size(), 2u);

  ASSERT_TRUE(kill_all_of_uid(kUid, kUid));
  auto st = base::sys::wait4_blocking(daemon->pid);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->signal, SIGKILL);
  EXPECT_EQ(::kill(bystander->pid, 0), 0) << "another uid's process was killed";
  // The runner's zombie went to the system's init, which reaps it on its own time.
  for (int i = 0; i < 400 && !processes_of_uid(kUid).empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_TRUE(processes_of_uid(kUid).empty());
  ::kill(bystander->pid, SIGKILL);
  (void)base::sys::wait4_blocking(bystander->pid);
}

TEST_F(RlimitSpawnerTest, KillAllOfUidRefusesRoot) { EXPECT_FALSE(kill_all_of_uid(0, 0)); }

TEST_F(RlimitSpawnerTest, ProcessesOfUidSeesZombieChildren) {
  auto spawner = RlimitSpawner::create(shell("exit 0"));
  ASSERT_TRUE(spawner);
  base::sys::UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  auto p = params();
  p.fds = RunFds::all(devnull.get());
  auto child = spawner->spawn(p);
  ASSERT_TRUE(child);
  // EOF once init has reported and exited.
  EXPECT_TRUE(read_channel_blocking(child->channel.get()).exited);
  // Not reaped yet: its init, a zombie of ours (its runner it reaped itself).
  for (int i = 0;
       i < 200 && (processes_of_uid(kUid).size() != 1 || !processes_of_uid(kUid)[0].zombie); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  auto seen = processes_of_uid(kUid);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].pid, child->pid);
  EXPECT_TRUE(seen[0].zombie);
  EXPECT_TRUE(seen[0].our_child);
  (void)base::sys::wait4_blocking(child->pid);
  EXPECT_TRUE(processes_of_uid(kUid).empty());
}

}  // namespace
}  // namespace pysandbox::jail
