// probe_v2 against fake /proc files and a fake cgroup directory in a temp dir: tests the parsing
// and the operator messages on any host, without touching the real cgroupfs.
#include "cgroups/probe.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <string>

#include "cgroups/delegation.hpp"

namespace pysandbox::cgroups {
namespace {

class FakeHost {
 public:
  FakeHost() {
    std::string pattern = testing::TempDir() + "cgroups_probe_XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    root_ = pattern;
    std::filesystem::create_directories(root_ + "/proc");
    std::filesystem::create_directories(root_ + "/mnt");
  }
  ~FakeHost() {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  void write(const std::string& relative, const std::string& text) {
    const std::filesystem::path path = root_ + "/" + relative;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << text;
  }
  // A cgroup directory below the fake mount, with the files the probe reads.
  void cgroup(const std::string& relative, const std::string& controllers) {
    write("mnt/" + relative + "/cgroup.controllers", controllers);
    write("mnt/" + relative + "/cgroup.procs", "");
    write("mnt/" + relative + "/cgroup.subtree_control", "");
  }

  ProbeOptions options() const {
    ProbeOptions o;
    o.proc_self_cgroup = root_ + "/proc/cgroup";
    o.proc_self_mountinfo = root_ + "/proc/mountinfo";
    o.mount_point_override = mount();
    return o;
  }
  std::string mount() const { return root_ + "/mnt"; }

 private:
  std::string root_;
};

constexpr const char* kVmMountinfo =
    "23 1 0:21 / / rw,relatime - 9p rootfs ro\n"
    "36 23 0:32 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n";

TEST(ProbeV2, VmLikeRootCgroupIsUsable) {
  FakeHost host;
  host.write("proc/cgroup", "0::/\n");
  host.write("proc/mountinfo", kVmMountinfo);
  host.cgroup("", "cpuset cpu io memory hugetlb pids rdma misc\n");
  const V2Probe probe = probe_v2(host.options());
  EXPECT_TRUE(probe.usable) << probe.reason;
  EXPECT_EQ(probe.reason, "");
  EXPECT_EQ(probe.own_path, "/");
  EXPECT_EQ(probe.own_dir, host.mount());
  EXPECT_EQ(probe.mount_point, host.mount());
  EXPECT_EQ(probe.controllers, (std::vector<std::string>{"cpuset", "cpu", "io", "memory", "hugetlb",
                                                         "pids", "rdma", "misc"}));
}

TEST(ProbeV2, SystemdUnitCgroupIsUsable) {
  FakeHost host;
  host.write("proc/cgroup", "0::/system.slice/pysandbox.service\n");
  host.write("proc/mountinfo",
             "30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 "
             "cgroup2 rw,nsdelegate,memory_recursiveprot\n");
  host.cgroup("system.slice/pysandbox.service", "cpu memory pids\n");
  const V2Probe probe = probe_v2(host.options());
  EXPECT_TRUE(probe.usable) << probe.reason;
  EXPECT_EQ(probe.own_dir, host.mount() + "/system.slice/pysandbox.service");
}

TEST(ProbeV2, HybridHostExplainsV1Controllers) {
  // This development host: memory/pids/cpu on v1, only hugetlb on the v2 mount.
  FakeHost host;
  host.write("proc/cgroup",
             "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/69c4\n1:cpu:/\n0::/\n");
  host.write("proc/mountinfo",
             "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
             "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
             "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n");
  host.cgroup("", "hugetlb\n");
  const V2Probe probe = probe_v2(host.options());
  EXPECT_FALSE(probe.usable);
  EXPECT_NE(probe.reason.find("cgroup.controllers lists hugetlb"), std::string::npos)
      << probe.reason;
  EXPECT_NE(probe.reason.find("missing: memory, pids, cpu"), std::string::npos) << probe.reason;
  EXPECT_NE(probe.reason.find("4:memory:/process_api/69c4"), std::string::npos) << probe.reason;
  EXPECT_NE(probe.reason.find("systemd.unified_cgroup_hierarchy=1"), std::string::npos);
}

TEST(ProbeV2, MissingControllersWithoutV1PointAtDelegation) {
  FakeHost host;
  host.write("proc/cgroup", "0::/user.slice/app\n");
  host.write("proc/mountinfo", kVmMountinfo);
  host.cgroup("user.slice/app", "memory pids\n");
  const V2Probe probe = probe_v2(host.options());
  EXPECT_FALSE(probe.usable);
  EXPECT_NE(probe.reason.find("missing: cpu"), std::string::npos) << probe.reason;
  EXPECT_NE(probe.reason.find("Delegate=yes"), std::string::npos) << probe.reason;
}

TEST(ProbeV2, CgroupV1OnlyKernel) {
  FakeHost host;
  host.write("proc/cgroup", "4:memory:/\n3:pids:/\n");
  host.write("proc/mountinfo", kVmMountinfo);
  const V2Probe probe = probe_v2(host.options());
  EXPECT_FALSE(probe.usable);
  EXPECT_NE(probe.reason.find("\"0::\""), std::string::npos) << probe.reason;
}

TEST(ProbeV2, NoCgroup2Mount) {
  FakeHost host;
  host.write("proc/cgroup", "0::/\n");
  host.write("proc/mountinfo", "23 1 0:21 / / rw,relatime - ext4 /dev/vda rw\n");
  const V2Probe probe = probe_v2(host.options());
  EXPECT_FALSE(probe.usable);
  EXPECT_NE(probe.reason.find("no cgroup2 filesystem"), std::string::npos) << probe.reason;
}

TEST(ProbeV2, ReadOnlyMountAsInDefaultDocker) {
  FakeHost host;
  host.write("proc/cgroup", "0::/\n");
  host.write("proc/mountinfo",
             "700 690 0:32 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup "
             "rw,nsdelegate\n");
  host.cgroup("", "cpu memory pids\n");
  const V2Probe probe = probe_v2(host.options());
  EXPECT_FALSE(probe.usable);
  EXPECT_NE(probe.reason.find("read-only"), std::string::npos) << probe.reason;
  EXPECT_NE(probe.reason.find("--cgroupns=private"), std::string::npos) << probe.reason;
}

TEST(ProbeV2, MountRootBelowHierarchyRoot) {
  // cgroupns=host container with the container's own subtree bind-mounted at /sys/fs/cgroup.
  FakeHost host;
  host.write("proc/cgroup", "0::/docker/abc/inner\n");
  host.write("proc/mountinfo",
             "700 690 0:32 /docker/abc /sys/fs/cgroup rw,relatime - cgroup2 cgroup rw\n");
  host.cgroup("inner", "cpu memory pids\n");
  const V2Probe probe = probe_v2(host.options());
  EXPECT_TRUE(probe.usable) << probe.reason;
  EXPECT_EQ(probe.own_dir, host.mount() + "/inner");
}

TEST(ProbeV2, OwnCgroupNotUnderMountRoot) {
  FakeHost host;
  host.write("proc/cgroup", "0::/docker/abcdef\n");  // "/docker/abc" is not a prefix cgroup
  host.write("proc/mountinfo",
             "700 690 0:32 /docker/abc /sys/fs/cgroup rw,relatime - cgroup2 cgroup rw\n");
  const V2Probe probe = probe_v2(host.options());
  EXPECT_FALSE(probe.usable);
  EXPECT_NE(probe.reason.find("not visible under any cgroup2 mount"), std::string::npos)
      << probe.reason;
}

TEST(ProbeV2, OwnCgroupOutsideNamespace) {
  FakeHost host;
  host.write("proc/cgroup", "0::/../../system.slice\n");
  host.write("proc/mountinfo", kVmMountinfo);
  const V2Probe probe = probe_v2(host.options());
  EXPECT_FALSE(probe.usable);
  EXPECT_NE(probe.reason.find("outside this process's cgroup namespace"), std::string::npos)
      << probe.reason;
}

TEST(ProbeV2, ThreadedOwnCgroup) {
  FakeHost host;
  host.write("proc/cgroup", "0::/t\n");
  host.write("proc/mountinfo", kVmMountinfo);
  host.cgroup("t", "cpu memory pids\n");
  host.write("mnt/t/cgroup.type", "threaded\n");
  const V2Probe probe = probe_v2(host.options());
  EXPECT_FALSE(probe.usable);
  EXPECT_NE(probe.reason.find("threaded"), std::string::npos) << probe.reason;
}

TEST(ProbeV2, MissingOwnDirectoryNamesPathAndErrno) {
  FakeHost host;
  host.write("proc/cgroup", "0::/gone\n");
  host.write("proc/mountinfo", kVmMountinfo);
  const V2Probe probe = probe_v2(host.options());
  EXPECT_FALSE(probe.usable);
  EXPECT_NE(probe.reason.find("stat " + host.mount() + "/gone: No such file or directory"),
            std::string::npos)
      << probe.reason;
}

TEST(ProbeV2, MountinfoEscapesAreDecoded) {
  // No override: the probe stats the decoded mount point (read-only) and names it.
  FakeHost host;
  host.write("proc/cgroup", "0::/\n");
  host.write("proc/mountinfo",
             "36 23 0:32 / /nonexistent/cgroup\\040two rw,relatime - cgroup2 cgroup2 rw\n");
  ProbeOptions options = host.options();
  options.mount_point_override.clear();
  const V2Probe probe = probe_v2(options);
  EXPECT_FALSE(probe.usable);
  EXPECT_EQ(probe.mount_point, "/nonexistent/cgroup two");
  EXPECT_NE(probe.reason.find("statfs /nonexistent/cgroup two: No such file or directory"),
            std::string::npos)
      << probe.reason;
}

TEST(ProbeV2, UnreadableProcFile) {
  ProbeOptions options;
  options.proc_self_cgroup = "/nonexistent/cgroup";
  const V2Probe probe = probe_v2(options);
  EXPECT_FALSE(probe.usable);
  EXPECT_NE(probe.reason.find("open /nonexistent/cgroup: No such file or directory"),
            std::string::npos)
      << probe.reason;
}

TEST(ProbeV2, ThisMachineIsConsistent) {
  // Read-only on the real /proc and cgroupfs. On the v1/v2 hybrid dev host: unusable.
  const V2Probe probe = probe_v2();
  EXPECT_EQ(probe.usable, probe.reason.empty()) << probe.reason;
  if (!probe.usable) {
    EXPECT_EQ(probe.reason.rfind("cgroup v2 unusable: ", 0), 0u) << probe.reason;
  }
  std::cout << "probe_v2 here: " << (probe.usable ? "usable, own " + probe.own_dir : probe.reason)
            << "\n";
}

TEST(Describe, UnusableProbeGivesReason) {
  V2Probe probe;
  probe.reason = "cgroup v2 unusable: test";
  const auto json = describe(probe);
  EXPECT_EQ(json.at("cgroup").as_string(), "unavailable");
  EXPECT_EQ(json.at("reason").as_string(), "cgroup v2 unusable: test");
}

TEST(DelegationSetup, RefusesUnusableProbeWithoutWriting) {
  V2Probe probe;
  probe.reason = "cgroup v2 unusable: test";
  probe.own_dir = "/nonexistent";
  auto delegation = Delegation::setup(probe);
  ASSERT_FALSE(delegation);
  EXPECT_EQ(delegation.error().code(), ENOTSUP);
  EXPECT_NE(delegation.error().message().find("cgroup v2 unusable: test"), std::string::npos);
}

}  // namespace
}  // namespace pysandbox::cgroups
