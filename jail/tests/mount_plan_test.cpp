#include "jail/mount_plan.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace pysandbox::jail {
namespace {

using Kind = MountOp::Kind;

const MountOp* find(const std::vector<MountOp>& ops, Kind kind, const std::string& target) {
  auto it = std::find_if(ops.begin(), ops.end(),
                         [&](const MountOp& op) { return op.kind == kind && op.target == target; });
  return it == ops.end() ? nullptr : &*it;
}

std::size_t index_of(const std::vector<MountOp>& ops, const MountOp* op) {
  return static_cast<std::size_t>(op - ops.data());
}

TEST(MountPlan, StartsPrivateAndEndsWithReadOnlyRootThenPivot) {
  MountPlanOptions o;
  o.ro_paths = {"/usr"};
  auto plan = build_mount_plan(o);
  ASSERT_TRUE(plan);
  ASSERT_GE(plan->size(), 4u);
  EXPECT_EQ(plan->front().kind, Kind::kMakePrivate);
  EXPECT_EQ((*plan)[1].kind, Kind::kMountTmpfs);
  EXPECT_EQ((*plan)[1].target, "/tmp");
  EXPECT_EQ((*plan)[plan->size() - 2].kind, Kind::kRemountRo);
  EXPECT_EQ((*plan)[plan->size() - 2].target, "/tmp");
  EXPECT_EQ(plan->back().kind, Kind::kPivotRoot);
}

TEST(MountPlan, BindsDirectoriesReadOnlyAfterTheirMountPoint) {
  MountPlanOptions o;
  o.ro_paths = {"/usr"};
  auto plan = build_mount_plan(o);
  ASSERT_TRUE(plan);
  const auto* mkdir = find(*plan, Kind::kMkdir, "/tmp/usr");
  const auto* bind = find(*plan, Kind::kBind, "/tmp/usr");
  ASSERT_NE(mkdir, nullptr);
  ASSERT_NE(bind, nullptr);
  EXPECT_LT(index_of(*plan, mkdir), index_of(*plan, bind));
  EXPECT_EQ(bind->source, "/usr");
  EXPECT_FALSE(bind->writable);
}

TEST(MountPlan, SymlinksStaySymlinks) {
  MountPlanOptions o;
  o.ro_paths = {"/bin"};  // merged-/usr: a symlink to usr/bin on Debian 12
  auto plan = build_mount_plan(o);
  ASSERT_TRUE(plan);
  const auto* link = find(*plan, Kind::kSymlink, "/tmp/bin");
  ASSERT_NE(link, nullptr);
  EXPECT_EQ(link->link_target, "usr/bin");
}

TEST(MountPlan, FilesGetParentsAndAnEmptyMountPoint) {
  MountPlanOptions o;
  o.ro_paths = {"/etc/ld.so.cache"};
  auto plan = build_mount_plan(o);
  ASSERT_TRUE(plan);
  const auto* parent = find(*plan, Kind::kMkdir, "/tmp/etc");
  const auto* touch = find(*plan, Kind::kTouch, "/tmp/etc/ld.so.cache");
  const auto* bind = find(*plan, Kind::kBind, "/tmp/etc/ld.so.cache");
  ASSERT_NE(parent, nullptr);
  ASSERT_NE(touch, nullptr);
  ASSERT_NE(bind, nullptr);
  EXPECT_LT(index_of(*plan, parent), index_of(*plan, touch));
  EXPECT_LT(index_of(*plan, touch), index_of(*plan, bind));
}

TEST(MountPlan, MissingHostPathsAreSkipped) {
  MountPlanOptions o;
  o.ro_paths = {"/definitely/not/here"};
  auto plan = build_mount_plan(o);
  ASSERT_TRUE(plan);
  EXPECT_EQ(find(*plan, Kind::kBind, "/tmp/definitely/not/here"), nullptr);
}

TEST(MountPlan, PrivateTmpHasTheConfiguredSize) {
  MountPlanOptions o;
  o.tmpfs_bytes = 12345678;
  auto plan = build_mount_plan(o);
  ASSERT_TRUE(plan);
  const auto* tmp = find(*plan, Kind::kMountTmpfs, "/tmp/tmp");
  ASSERT_NE(tmp, nullptr);
  EXPECT_NE(tmp->data.find("size=12345678"), std::string::npos);
}

TEST(MountPlan, DevicesAreOnlyTheFourHarmlessOnes) {
  auto plan = build_mount_plan({});
  ASSERT_TRUE(plan);
  std::vector<std::string> devices;
  for (const auto& op : *plan) {
    if (op.kind == Kind::kBind && op.writable) devices.push_back(op.source);
  }
  EXPECT_EQ(devices,
            (std::vector<std::string>{"/dev/null", "/dev/zero", "/dev/random", "/dev/urandom"}));
}

TEST(MountPlan, RejectsRelativeUnnormalisedAndReservedPaths) {
  for (const char* bad : {"usr", "/usr/", "/usr/../etc", "/a//b", "/tmp", "/proc/1", "/dev"}) {
    MountPlanOptions o;
    o.ro_paths = {bad};
    EXPECT_FALSE(build_mount_plan(o)) << bad;
  }
}

TEST(MountPlan, DefaultPathsExposeNoHostState) {
  for (const auto& p : default_ro_paths()) {
    for (const char* banned : {"/home", "/root", "/var", "/run", "/srv", "/etc/shadow",
                               "/etc/passwd", "/proc", "/sys"}) {
      EXPECT_FALSE(p == banned || p.starts_with(std::string(banned) + "/")) << p;
    }
  }
}

TEST(MountPlan, PrebuiltRootLeavesOnlyTmpAndProcToEachChild) {
  MountPlanOptions o;
  o.ro_paths = {"/usr"};
  o.tmpfs_bytes = 8ull << 20;
  o.prebuilt_root = true;
  auto per_run = build_mount_plan(o);
  ASSERT_TRUE(per_run);
  ASSERT_EQ(per_run->size(), 2u);
  EXPECT_EQ((*per_run)[0].kind, Kind::kMountTmpfs);
  EXPECT_EQ((*per_run)[0].target, "/tmp");
  EXPECT_NE((*per_run)[0].data.find("size=8388608"), std::string::npos);
  EXPECT_EQ((*per_run)[1].kind, Kind::kMountProc);
  EXPECT_EQ((*per_run)[1].target, "/proc");
}

TEST(MountPlan, RootPlanHasNoPrivateTmpAndAnEmptyProcThenPivots) {
  MountPlanOptions o;
  o.ro_paths = {"/usr"};
  auto root = build_root_plan(o);
  ASSERT_TRUE(root);
  const auto& ops = *root;
  // The shared root must not carry a writable /tmp (each child mounts its own) nor a proc that
  // shows processes (only one of an empty PID namespace, so that children may mount theirs).
  for (const auto& op : ops) {
    EXPECT_FALSE(op.kind == Kind::kMountTmpfs && op.target == o.staging_dir + "/tmp");
    EXPECT_NE(op.kind, Kind::kMountProc);
  }
  EXPECT_EQ(std::count_if(ops.begin(), ops.end(),
                          [](const MountOp& op) { return op.kind == Kind::kMountEmptyProc; }),
            1);
  ASSERT_GE(ops.size(), 2u);
  EXPECT_EQ(ops[ops.size() - 2].kind, Kind::kRemountRo);
  EXPECT_EQ(ops.back().kind, Kind::kPivotRoot);
}

}  // namespace
}  // namespace pysandbox::jail
