// Real cgroup v2 tests. They write cgroups, so they run only where probe_v2() says usable AND
// PYSANDBOX_VM_TESTS=1 (double guard: a mis-detected host is never written). Run them with
// tests/vm/run-cgroups-tests.sh, which boots vm-run twice over: once with the own cgroup at the
// mount root (libcgroup backend) and once nested like a systemd Delegate=yes unit (direct I/O).
#include <gtest/gtest.h>
#include <linux/sched.h>  // struct clone_args, CLONE_INTO_CGROUP
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/serialize.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "base/sys/unique_fd.hpp"
#include "cgroups/cgroupfs.hpp"
#include "cgroups/delegation.hpp"
#include "cgroups/probe.hpp"

namespace pysandbox::cgroups {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using base::sys::UniqueFd;

constexpr std::uint64_t kMiB = 1ull << 20;

// Probed once, before any test moves this process into <base>/server.
const V2Probe& initial_probe() {
  static const V2Probe probe = probe_v2();
  return probe;
}
[[maybe_unused]] const bool kProbedAtStartup = (initial_probe(), true);

std::string skip_reason() {
  if (!initial_probe().usable) {
    return "real-cgroup test skipped: " + initial_probe().reason +
           " (these tests run inside vm-run: tests/vm/run-cgroups-tests.sh)";
  }
  const char* env = std::getenv("PYSANDBOX_VM_TESTS");
  if (env == nullptr || std::string(env) != "1") {
    return "real-cgroup test skipped: cgroup v2 is usable here but PYSANDBOX_VM_TESTS=1 is not "
           "set (these tests create and remove cgroups; run them inside vm-run)";
  }
  return "";
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// The "0::" path of a /proc/<pid>/cgroup or /proc/<pid>/task/<tid>/cgroup file.
std::string unified_path(const std::string& proc_file) {
  std::istringstream in(slurp(proc_file));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  }
  return "";
}

// clone3(CLONE_INTO_CGROUP): the child starts inside the leaf (no window outside its limits).
pid_t clone_into(int cgroup_fd, const std::function<int()>& body) {
  clone_args args{};
  args.flags = CLONE_INTO_CGROUP;
  args.exit_signal = SIGCHLD;
  args.cgroup = static_cast<__u64>(cgroup_fd);
  const long pid = ::syscall(SYS_clone3, &args, sizeof args);
  if (pid == 0) ::_exit(body());
  return static_cast<pid_t>(pid);
}

int wait_status(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("signal ") + ::strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

[[noreturn]] void sleep_forever() {
  for (;;) ::pause();
}

int touch_memory(std::size_t bytes) {
  void* mem = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return 90;
  auto* bytes_ptr = static_cast<volatile char*>(mem);
  for (std::size_t i = 0; i < bytes; i += 4096) bytes_ptr[i] = 1;
  return 0;
}

std::size_t count_words(const std::string& text) { return fs::split_words(text).size(); }

// Polls until pred() or the timeout; for states the kernel reaches asynchronously.
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

class VmCgroupTest : public testing::Test {
 protected:
  void SetUp() override {
    if (auto why = skip_reason(); !why.empty()) GTEST_SKIP() << why;
  }

  // Delegation::setup with the initial probe (repeatable: idempotent layout).
  void setup() {
    auto delegation = Delegation::setup(initial_probe());
    ASSERT_TRUE(delegation) << delegation.error().message();
    delegation_.emplace(std::move(*delegation));
  }

  LeafCgroup make_leaf(const std::string& name, const LeafLimits& limits) {
    auto leaf = delegation_->create_leaf(name, limits);
    if (!leaf) throw std::runtime_error(leaf.error().message());
    return std::move(*leaf);
  }

  Result<void> destroy(LeafCgroup& leaf) {
    std::optional<Result<void>> out;
    boost::asio::co_spawn(
        io_, [&]() -> boost::asio::awaitable<void> { out.emplace(co_await leaf.async_destroy()); },
        boost::asio::detached);
    io_.run();
    io_.restart();
    return std::move(*out);
  }

  std::string base() const { return fs::join(initial_probe().own_dir, "pysandbox"); }
  bool libcgroup_expected() const { return initial_probe().own_dir == initial_probe().mount_point; }

  std::optional<Delegation> delegation_;
  boost::asio::io_context io_;
};

// Defined first: the first setup() of the process must see the extra thread move with it.
TEST_F(VmCgroupTest, DelegationLayoutMovesWholeServerAndEnablesControllers) {
  std::atomic<pid_t> tid{0};
  std::atomic<bool> stop{false};
  std::thread thread([&] {
    tid = static_cast<pid_t>(::syscall(SYS_gettid));
    while (!stop) std::this_thread::sleep_for(1ms);
  });
  while (tid == 0) std::this_thread::sleep_for(1ms);
  setup();
  const V2Probe& probe = initial_probe();
  const std::string expected =
      (probe.own_path == "/" ? std::string() : probe.own_path) + "/pysandbox/server";
  EXPECT_EQ(unified_path("/proc/self/cgroup"), expected);
  EXPECT_EQ(unified_path("/proc/self/task/" + std::to_string(tid.load()) + "/cgroup"), expected);
  stop = true;
  thread.join();

  EXPECT_TRUE(fs::has_word(slurp(base() + "/server/cgroup.procs"), std::to_string(::getpid())));
  for (const std::string& dir : {probe.own_dir, base(), base() + "/sandboxes"}) {
    const std::string enabled = slurp(dir + "/cgroup.subtree_control");
    for (const char* c : {"memory", "pids", "cpu"}) {
      EXPECT_TRUE(fs::has_word(enabled, c)) << dir << "/cgroup.subtree_control: " << enabled;
    }
  }
  // Nothing but the server sits in the subtree's inner nodes.
  EXPECT_EQ(count_words(slurp(base() + "/cgroup.procs")), 0u);
  EXPECT_EQ(count_words(slurp(base() + "/sandboxes/cgroup.procs")), 0u);

  const auto json = delegation_->describe();
  std::cout << "describe(): " << boost::json::serialize(json) << "\n";
  EXPECT_EQ(json.at("cgroup").as_string(), "v2");
  EXPECT_EQ(json.at("path").as_string(), base() + "/sandboxes");
  EXPECT_EQ(json.at("backend").as_string(), libcgroup_expected() ? "libcgroup" : "direct");
  EXPECT_EQ(delegation_->sandboxes_path(), base() + "/sandboxes");
  EXPECT_EQ(delegation_->server_path(), base() + "/server");
}

TEST_F(VmCgroupTest, LeafLimitsAreWrittenAndReadBack) {
  setup();
  LeafCgroup leaf = make_leaf("limits", {64 * kMiB, 8, 0.2, 100000});
  EXPECT_EQ(leaf.path(), base() + "/sandboxes/limits");
  EXPECT_GE(leaf.dir_fd(), 0);
  EXPECT_EQ(slurp(leaf.path() + "/memory.max"), "67108864\n");
  if (delegation_->describe().at("swap_limit").as_bool()) {
    EXPECT_EQ(slurp(leaf.path() + "/memory.swap.max"), "0\n");
  }
  EXPECT_EQ(slurp(leaf.path() + "/memory.oom.group"), "1\n");
  EXPECT_EQ(slurp(leaf.path() + "/pids.max"), "8\n");
  EXPECT_EQ(slurp(leaf.path() + "/cpu.max"), "20000 100000\n");
  auto populated = leaf.is_populated();
  ASSERT_TRUE(populated) << populated.error().message();
  EXPECT_FALSE(*populated);

  LeafCgroup unlimited = make_leaf("unlimited", {});
  EXPECT_EQ(slurp(unlimited.path() + "/memory.max"), "max\n");
  EXPECT_EQ(slurp(unlimited.path() + "/pids.max"), "max\n");
  EXPECT_EQ(slurp(unlimited.path() + "/cpu.max"), "max 100000\n");
  ASSERT_TRUE(destroy(unlimited));
  ASSERT_TRUE(destroy(leaf));
  EXPECT_FALSE(exists(base() + "/sandboxes/limits"));
}

TEST_F(VmCgroupTest, BadAndDuplicateNamesAreRefused) {
  setup();
  for (const char* bad : {"", ".", "..", "a/b", "../x", "sp ace", "nl\n"}) {
    auto leaf = delegation_->create_leaf(bad, {});
    ASSERT_FALSE(leaf) << bad;
    EXPECT_EQ(leaf.error().code(), EINVAL);
  }
  LeafCgroup first = make_leaf("dup", {});
  auto second = delegation_->create_leaf("dup", {});
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), EEXIST) << second.error().message();
  EXPECT_TRUE(exists(first.path()));  // the failed create did not remove the live leaf
  ASSERT_TRUE(destroy(first));
}

TEST_F(VmCgroupTest, CloneIntoCgroupPlacesChildInLeaf) {
  setup();
  LeafCgroup leaf = make_leaf("clone", {256 * kMiB, 16, 1.0, 100000});
  const pid_t pid = clone_into(leaf.dir_fd(), []() -> int { sleep_forever(); });
  ASSERT_GT(pid, 0) << "clone3: " << std::strerror(errno);
  EXPECT_TRUE(fs::has_word(slurp(leaf.path() + "/cgroup.procs"), std::to_string(pid)));
  EXPECT_EQ(unified_path("/proc/" + std::to_string(pid) + "/cgroup"),
            leaf.path().substr(initial_probe().mount_point.size()));
  EXPECT_TRUE(leaf.is_populated().value());

  ASSERT_TRUE(leaf.kill());
  const int status = wait_status(pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << describe_status(status);
  EXPECT_TRUE(eventually([&] { return !leaf.is_populated().value(); }));
  ASSERT_TRUE(destroy(leaf));
}

TEST_F(VmCgroupTest, MemoryLimitOomKillsChild) {
  setup();
  LeafCgroup leaf = make_leaf("oom", {64 * kMiB, 16, 0, 100000});
  const pid_t pid = clone_into(leaf.dir_fd(), [] { return touch_memory(200 * kMiB); });
  ASSERT_GT(pid, 0);
  const int status = wait_status(pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << describe_status(status);
  auto stats = leaf.stats();
  ASSERT_TRUE(stats) << stats.error().message();
  EXPECT_GE(stats->oom_kill, 1u);
  EXPECT_GE(stats->oom, 1u);
  EXPECT_GE(stats->memory_max_events, 1u);
  EXPECT_LE(stats->memory_peak_bytes, 64 * kMiB);
  std::cout << "oom: oom_kill " << stats->oom_kill << ", max events " << stats->memory_max_events
            << ", peak " << stats->memory_peak_bytes / kMiB << " MiB\n";
  ASSERT_TRUE(destroy(leaf));
}

TEST_F(VmCgroupTest, PidsMaxHoldsForkLoop) {
  setup();
  LeafCgroup leaf = make_leaf("forkbomb", {64 * kMiB, 8, 0, 100000});
  const pid_t pid = clone_into(leaf.dir_fd(), []() -> int {
    int forked = 0;
    for (;;) {
      const pid_t child = ::fork();
      if (child == 0) sleep_forever();
      if (child < 0) return errno == EAGAIN ? forked : 100 + errno;
      if (++forked > 50) return 99;
    }
  });
  ASSERT_GT(pid, 0);
  const int status = wait_status(pid);
  ASSERT_TRUE(WIFEXITED(status)) << describe_status(status);
  EXPECT_EQ(WEXITSTATUS(status), 7) << "forks before EAGAIN (8 = the loop + 7 children)";
  auto stats = leaf.stats();
  ASSERT_TRUE(stats) << stats.error().message();
  EXPECT_GE(stats->pids_max_events, 1u);
  EXPECT_TRUE(leaf.is_populated().value());  // the 7 orphans still sleep inside
  ASSERT_TRUE(destroy(leaf));
  EXPECT_FALSE(exists(base() + "/sandboxes/forkbomb"));
}

TEST_F(VmCgroupTest, CpuMaxThrottlesBusyLoop) {
  setup();
  LeafCgroup leaf = make_leaf("cpu", {64 * kMiB, 8, 0.2, 100000});
  const auto start = Clock::now();
  const pid_t pid = clone_into(leaf.dir_fd(), []() -> int {
    const auto begin = Clock::now();
    volatile std::uint64_t spins = 0;
    while (Clock::now() - begin < 1500ms) spins = spins + 1;
    return 0;
  });
  ASSERT_GT(pid, 0);
  const int status = wait_status(pid);
  const double wall_usec = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
  ASSERT_TRUE(WIFEXITED(status)) << describe_status(status);
  auto stats = leaf.stats();
  ASSERT_TRUE(stats) << stats.error().message();
  const double share = static_cast<double>(stats->cpu_usage_usec) / wall_usec;
  std::cout << "cpu.max 0.2: usage " << stats->cpu_usage_usec << " us over " << wall_usec
            << " us wall = " << share << ", throttled " << stats->cpu_nr_throttled << "/"
            << stats->cpu_nr_periods << " periods\n";
  EXPECT_GE(share, 0.10);
  EXPECT_LE(share, 0.35);
  EXPECT_GT(stats->cpu_nr_throttled, 0u);
  EXPECT_GT(stats->cpu_throttled_usec, 0u);
  ASSERT_TRUE(destroy(leaf));
}

TEST_F(VmCgroupTest, MemoryPeakReportedForFiftyMegabytes) {
  setup();
  LeafCgroup leaf = make_leaf("peak", {256 * kMiB, 8, 0, 100000});
  const pid_t pid = clone_into(leaf.dir_fd(), [] { return touch_memory(50 * kMiB); });
  ASSERT_GT(pid, 0);
  const int status = wait_status(pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << describe_status(status);
  auto stats = leaf.stats();
  ASSERT_TRUE(stats) << stats.error().message();
  std::cout << "memory.peak after touching 50 MiB: " << stats->memory_peak_bytes << " bytes ("
            << static_cast<double>(stats->memory_peak_bytes) / kMiB << " MiB)\n";
  EXPECT_TRUE(stats->memory_peak_exact);
  EXPECT_GE(stats->memory_peak_bytes, 40 * kMiB);
  EXPECT_LE(stats->memory_peak_bytes, 60 * kMiB);
  EXPECT_EQ(stats->oom_kill, 0u);
  ASSERT_TRUE(destroy(leaf));
}

TEST_F(VmCgroupTest, TeardownRemovesLeafWithLiveProcesses) {
  setup();
  LeafCgroup leaf = make_leaf("busy", {64 * kMiB, 16, 0, 100000});
  const std::string path = leaf.path();
  const pid_t pid = clone_into(leaf.dir_fd(), []() -> int {
    for (int i = 0; i < 3; ++i) {
      if (::fork() == 0) sleep_forever();
    }
    sleep_forever();
  });
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(eventually([&] { return count_words(slurp(path + "/cgroup.procs")) == 4; }));
  const auto start = Clock::now();
  auto destroyed = destroy(leaf);
  const auto took = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  ASSERT_TRUE(destroyed) << destroyed.error().message();
  std::cout << "async_destroy with 4 live processes: " << took << " ms\n";
  EXPECT_FALSE(exists(path));
  EXPECT_EQ(leaf.dir_fd(), -1);
  const int status = wait_status(pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << describe_status(status);
  EXPECT_TRUE(destroy(leaf));  // moved-from: a no-op, never a second rmdir
}

TEST_F(VmCgroupTest, TeardownRemovesEmptyLeaf) {
  setup();
  LeafCgroup leaf = make_leaf("empty", {});
  const std::string path = leaf.path();
  ASSERT_TRUE(destroy(leaf));
  EXPECT_FALSE(exists(path));
}

TEST_F(VmCgroupTest, DestructorKillsAndRemovesLeaf) {
  setup();
  std::string path;
  pid_t pid = -1;
  {
    LeafCgroup leaf = make_leaf("dropped", {64 * kMiB, 8, 0, 100000});
    path = leaf.path();
    pid = clone_into(leaf.dir_fd(), []() -> int { sleep_forever(); });
    ASSERT_GT(pid, 0);
  }
  const int status = wait_status(pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << describe_status(status);
  if (exists(path)) {
    // Not gone within the destructor's grace: the reaper owns it and the next create retries.
    EXPECT_EQ(delegation_->describe().at("stale_pending").as_uint64(), 1u);
    std::this_thread::sleep_for(200ms);
    LeafCgroup next = make_leaf("after-dropped", {});
    ASSERT_TRUE(destroy(next));
  }
  EXPECT_FALSE(exists(path));
  EXPECT_EQ(delegation_->describe().at("stale_pending").as_uint64(), 0u);
}

TEST_F(VmCgroupTest, StaleLeavesOfAKilledServerAreRemovedAtStartup) {
  setup();
  const std::string sandboxes = delegation_->sandboxes_path();
  // What a SIGKILLed server leaves behind: leaves with and without processes, one with a child.
  ASSERT_EQ(::mkdir((sandboxes + "/stale-live").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((sandboxes + "/stale-empty").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((sandboxes + "/stale-nested").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((sandboxes + "/stale-nested/inner").c_str(), 0755), 0);
  auto live_fd = fs::open_dir(sandboxes + "/stale-live");
  ASSERT_TRUE(live_fd);
  const pid_t pid = clone_into(live_fd->get(), []() -> int {
    if (::fork() == 0) sleep_forever();
    sleep_forever();
  });
  ASSERT_GT(pid, 0);
  live_fd->reset();

  setup();  // a new server starting over the same subtree
  EXPECT_EQ(delegation_->describe().at("stale_removed").as_uint64(), 3u);
  EXPECT_EQ(delegation_->describe().at("stale_pending").as_uint64(), 0u);
  for (const char* name : {"stale-live", "stale-empty", "stale-nested"}) {
    EXPECT_FALSE(exists(sandboxes + "/" + name)) << name;
  }
  const int status = wait_status(pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << describe_status(status);
}

TEST_F(VmCgroupTest, SecondServerInSameSubtreeIsRefused) {
  setup();
  const pid_t other = ::fork();  // stays in <base>/server, like a second live server
  if (other == 0) sleep_forever();
  ASSERT_GT(other, 0);
  auto second = Delegation::setup(initial_probe());
  ::kill(other, SIGKILL);
  wait_status(other);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), EBUSY);
  EXPECT_NE(second.error().message().find("another pysandboxd"), std::string::npos)
      << second.error().message();
}

TEST_F(VmCgroupTest, FiftyCreateDestroyCyclesLeaveNothingBehind) {
  setup();
  constexpr int kCycles = 50;
  std::chrono::duration<double, std::milli> creating{0}, destroying{0};
  const auto start = Clock::now();
  for (int i = 0; i < kCycles; ++i) {
    const auto t0 = Clock::now();
    LeafCgroup leaf = make_leaf("cycle-" + std::to_string(i), {64 * kMiB, 8, 0.5, 100000});
    creating += Clock::now() - t0;
    // Alternate: a child that already exited, and one still running at teardown.
    const bool live = i % 2 == 1;
    const pid_t pid = clone_into(leaf.dir_fd(), [live] {
      if (live) sleep_forever();
      return 0;
    });
    ASSERT_GT(pid, 0);
    if (!live) wait_status(pid);
    const auto t1 = Clock::now();
    auto destroyed = destroy(leaf);
    destroying += Clock::now() - t1;
    ASSERT_TRUE(destroyed) << destroyed.error().message();
    if (live) wait_status(pid);
  }
  const double total = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  std::cout << "per cycle (" << delegation_->describe().at("backend").as_string().c_str()
            << "): total " << total / kCycles << " ms, create_leaf " << creating.count() / kCycles
            << " ms, async_destroy " << destroying.count() / kCycles << " ms (TCG)\n";
  auto fd = fs::open_dir(delegation_->sandboxes_path());
  ASSERT_TRUE(fd);
  auto left = fs::list_subdirs(fd->get(), delegation_->sandboxes_path());
  ASSERT_TRUE(left);
  EXPECT_TRUE(left->empty()) << left->size() << " leaves left, first: " << left->front();
  EXPECT_EQ(delegation_->describe().at("stale_pending").as_uint64(), 0u);
}

TEST_F(VmCgroupTest, NeverWritesAboveOwnCgroup) {
  const V2Probe& probe = initial_probe();
  if (probe.own_dir == probe.mount_point) {
    GTEST_SKIP() << "own cgroup is the mount root: nothing above it (the nested run covers this)";
  }
  UniqueFd watch(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  ASSERT_TRUE(watch);
  // Every cgroup strictly above <own>, up to and including the mount root.
  std::vector<std::string> above;
  for (std::filesystem::path p = std::filesystem::path(probe.own_dir).parent_path();;
       p = p.parent_path()) {
    above.push_back(p.string());
    if (p.string() == probe.mount_point || p == p.parent_path()) break;
  }
  for (const std::string& dir : above) {
    ASSERT_GE(::inotify_add_watch(watch.get(), dir.c_str(), IN_CREATE | IN_DELETE), 0) << dir;
    for (const char* file : {"cgroup.subtree_control", "cgroup.procs"}) {
      const std::string path = dir + "/" + file;
      ASSERT_GE(::inotify_add_watch(watch.get(), path.c_str(), IN_MODIFY), 0) << path;
    }
  }
  const auto drain = [&] {
    pollfd pfd{watch.get(), POLLIN, 0};
    if (::poll(&pfd, 1, 100) <= 0) return 0;
    char buf[4096];
    int events = 0;
    for (ssize_t n; (n = ::read(watch.get(), buf, sizeof buf)) > 0;) {
      for (ssize_t off = 0; off < n;) {
        const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
        ++events;
        off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
      }
    }
    return events;
  };
  // Positive control (a no-op rewrite of an already enabled controller, by the test itself):
  // the watch does see writes to these files.
  const std::string parent_control = above.front() + "/cgroup.subtree_control";
  ASSERT_TRUE(fs::write_file(parent_control, "+memory"));
  ASSERT_GE(drain(), 1) << "inotify did not report a write to " << parent_control;

  setup();
  LeafCgroup leaf = make_leaf("guard", {64 * kMiB, 8, 0.2, 100000});
  const pid_t pid = clone_into(leaf.dir_fd(), []() -> int { sleep_forever(); });
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(destroy(leaf));
  wait_status(pid);
  EXPECT_EQ(drain(), 0) << "something wrote to a cgroup above " << probe.own_dir;
  EXPECT_EQ(delegation_->describe().at("backend").as_string(), "direct");
}

}  // namespace
}  // namespace pysandbox::cgroups
