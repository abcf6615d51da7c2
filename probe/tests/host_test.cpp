// The startup probes on this host (a full Linux kernel, root): everything works, and a filter
// that does not hold is caught.
#include <gtest/gtest.h>
#include <linux/seccomp.h>
#include <sched.h>

#include <filesystem>
#include <fstream>

#include "probe/namespaces.hpp"
#include "probe/proc_environ.hpp"
#include "probe/rlimits.hpp"
#include "probe/root_namespaces.hpp"
#include "probe/seccomp.hpp"
#include "seccomp_policies/policy.hpp"

namespace pysandbox::probe {
namespace {

constexpr uid_t kUid = 2000970;

TEST(Host, EverythingWorksOnThisHost) {
  const auto program =
      seccomp_policies::Policy::load_file(PYSANDBOX_DATA_DIR "/default.policy").compile();
  NamespaceProbeOptions o;
  o.uid = o.gid = kUid;
  o.seccomp = &program;
  const Facilities caps = namespace_facilities(o);
  std::vector<std::string> names;
  for (const auto& c : caps.items) {
    names.push_back(c.name);
    EXPECT_TRUE(c.ok) << c.name << ": " << c.detail;
    EXPECT_EQ(c.err, 0) << c.name;
  }
  EXPECT_EQ(names,
            (std::vector<std::string>{"clone3", "pidfd", "user_ns", "net_ns", "ipc_ns", "uts_ns",
                                      "cgroup_ns", "pid_ns", "mount_ns", "mount_private",
                                      "bind_rec_ro", "pivot_root", "chroot", "seccomp"}));
  EXPECT_TRUE(caps.has("pivot_root"));
  EXPECT_FALSE(caps.has("no_such_thing"));
  EXPECT_EQ(caps.find("no_such_thing"), nullptr);
}

TEST(Host, TheRlimitPolicyHoldsToo) {
  const auto program =
      seccomp_policies::Policy::load_file(PYSANDBOX_DATA_DIR "/rlimit.policy").compile();
  const Facility c = seccomp_holds(program);
  EXPECT_TRUE(c.ok) << c.detail;
}

TEST(Host, AFilterThatDoesNotRefuseNamespacesIsNotGoodEnough) {
  const auto allow_all = seccomp_policies::Policy::parse("default allow\n", "t").compile();
  const Facility c = seccomp_holds(allow_all);
  EXPECT_FALSE(c.ok);
  EXPECT_NE(c.detail.find("unshare(CLONE_NEWUSER) succeeded under the filter"), std::string::npos)
      << c.detail;
  EXPECT_NE(c.detail.find("socket(AF_INET) succeeded"), std::string::npos) << c.detail;
}

TEST(Host, AFilterThatCannotLoadIsReportedWithItsErrno) {
  const seccomp_policies::BpfProgram empty;  // the kernel refuses an empty program
  const Facility c = seccomp_holds(empty);
  EXPECT_FALSE(c.ok);
  EXPECT_EQ(c.err, EINVAL);
  EXPECT_EQ(c.detail, "loading the filter: Invalid argument");
}

TEST(Host, RootNamespacesAllWorkHereAndLeaveNothingBehind) {
  const RootNamespaces ns = root_namespaces();
  for (const auto& c : ns.items) EXPECT_TRUE(c.ok) << c.name << ": " << c.detail;
  EXPECT_EQ(ns.clone_flags, static_cast<unsigned long>(CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET |
                                                       CLONE_NEWIPC | CLONE_NEWUTS));
  EXPECT_TRUE(ns.mounts);
  EXPECT_FALSE(ns.tolerate_private_failure);  // Linux: make-rprivate works
  EXPECT_TRUE(ns.proc);
  EXPECT_TRUE(ns.net_isolated);
  for (const auto& e : std::filesystem::directory_iterator("/tmp")) {
    EXPECT_EQ(e.path().filename().string().rfind("pysandbox-mount-probe-", 0), std::string::npos)
        << e.path();
  }
  // The host's /tmp is no tmpfs of the probe's.
  std::ifstream mounts("/proc/self/mounts");
  std::string line;
  while (std::getline(mounts, line))
    EXPECT_EQ(line.find(" /tmp tmpfs "), std::string::npos) << line;
}

TEST(Host, OurEnvironIsGuardedFromOtherUids) {
  const Facility c = proc_environ_protected(kUid, kUid);
  EXPECT_TRUE(c.ok) << c.detail;
}

TEST(Host, EveryRlimitCanBeLoweredHere) {
  const auto limits = rlimits();
  ASSERT_EQ(limits.size(), 9u);
  for (const auto& l : limits) EXPECT_TRUE(l.ok) << l.name << ": " << l.detail;
  EXPECT_EQ(limits.front().name, "rlimit_AS");
}

}  // namespace
}  // namespace pysandbox::probe
