// Scratch directories of rlimit mode: created private, removed without following what a script
// may have planted (symlinks out of the tree, unreadable or very deep directories).
#include "jail/scratch_dir.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace pysandbox::jail {
namespace {

namespace fs = std::filesystem;

constexpr uid_t kUid = 2000960;

std::size_t open_fd_count() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

class ScratchDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pysandbox-scratch-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(base_, ec);
    fs::remove_all(outside_, ec);
  }
  std::string base_;
  std::string outside_ = "/tmp/pysandbox-scratch-test-outside";
};

TEST_F(ScratchDirTest, SharedRootIsStickyAndUnlistableAndGoesAway) {
  auto root = ScratchRoot::create(base_ + "/scratch", /*shared=*/true);
  ASSERT_TRUE(root) << root.error().message();
  struct stat st {};
  ASSERT_EQ(::stat((base_ + "/scratch").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0711u);
  ASSERT_EQ(::stat(root->path().c_str(), &st), 0);
  // Runs create their directories in it, and cannot list or remove the others'.
  EXPECT_EQ(st.st_mode & 07777, 01733u);
  std::filesystem::create_directories(root->path() + "/run-x/sub");
  std::ofstream(root->path() + "/run-x/sub/f") << "data";

  const std::string root_path = root->path();
  root = ScratchRoot::create(base_ + "/scratch", /*shared=*/false);  // the old one goes
  ASSERT_TRUE(root);
  EXPECT_FALSE(fs::exists(root_path));
  ASSERT_EQ(::stat(root->path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
}

TEST_F(ScratchDirTest, RunNamesAreUnguessable) {
  const std::string a = ScratchRoot::new_run_name(), b = ScratchRoot::new_run_name();
  EXPECT_EQ(a.size(), 4u + 32u);
  EXPECT_EQ(a.rfind("run-", 0), 0u);
  EXPECT_NE(a, b);
}

TEST_F(ScratchDirTest, RemovalDoesNotFollowSymlinksOutOfTheTree) {
  fs::create_directories(outside_ + "/sub");
  std::ofstream(outside_ + "/precious") << "keep";
  std::ofstream(outside_ + "/sub/precious") << "keep";
  const std::string tree = base_ + "/tree";
  fs::create_directories(tree + "/a/b");
  fs::create_directory_symlink(outside_, tree + "/link-to-dir");
  fs::create_directory_symlink(outside_ + "/sub", tree + "/a/b/link-to-sub");
  fs::create_symlink(outside_ + "/precious", tree + "/a/link-to-file");
  fs::create_symlink("/nonexistent", tree + "/dangling");
  std::ofstream(tree + "/a/b/f") << "x";
  ::mkfifo((tree + "/a/fifo").c_str(), 0600);

  int base_fd = ::open(base_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(base_fd, 0);
  auto r = remove_tree_at(base_fd, "tree");
  ::close(base_fd);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_FALSE(fs::exists(fs::symlink_status(tree)));
  EXPECT_TRUE(fs::exists(outside_ + "/precious"));
  EXPECT_TRUE(fs::exists(outside_ + "/sub/precious"));
}

TEST_F(ScratchDirTest, ASymlinkInPlaceOfTheTreeIsUnlinkedNotFollowed) {
  fs::create_directories(outside_);
  std::ofstream(outside_ + "/precious") << "keep";
  fs::create_directory_symlink(outside_, base_ + "/tree");
  int base_fd = ::open(base_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_TRUE(remove_tree_at(base_fd, "tree"));
  ::close(base_fd);
  EXPECT_FALSE(fs::exists(fs::symlink_status(base_ + "/tree")));
  EXPECT_TRUE(fs::exists(outside_ + "/precious"));
}

TEST_F(ScratchDirTest, DeepAndUnreadableTreesAreRemovedWithConstantFds) {
  // Deeper than PATH_MAX allows to name, built relative to each level.
  int fd = ::open(base_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_EQ(::mkdirat(fd, "deep", 0700), 0);
  int cur = ::openat(fd, "deep", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const std::string name(200, 'd');
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(::mkdirat(cur, name.c_str(), 0700), 0) << i;
    const int next = ::openat(cur, name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ::close(cur);
    cur = next;
  }
  ASSERT_EQ(::mkdirat(cur, "locked", 0), 0);
  ASSERT_EQ(::fchmod(cur, 0), 0);
  ::close(cur);

  const std::size_t fds_before = open_fd_count();
  auto r = remove_tree_at(fd, "deep");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(open_fd_count(), fds_before);
  struct stat st {};
  EXPECT_NE(::fstatat(fd, "deep", &st, AT_SYMLINK_NOFOLLOW), 0);
  ::close(fd);
}

TEST_F(ScratchDirTest, RemovingAMissingEntryIsFine) {
  int fd = ::open(base_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  EXPECT_TRUE(remove_tree_at(fd, "never-there"));
  ::close(fd);
}

TEST_F(ScratchDirTest, OnlyTheEntriesOfTheGivenUidAreRemoved) {
  const std::string dir = base_ + "/shared";
  fs::create_directories(dir + "/theirs-dir/sub");
  std::ofstream(dir + "/theirs-file") << "x";
  std::ofstream(dir + "/theirs-dir/sub/f") << "x";
  std::ofstream(dir + "/mine") << "x";
  fs::create_symlink("/etc/passwd", dir + "/theirs-link");
  for (const char* n : {"/theirs-dir", "/theirs-dir/sub", "/theirs-dir/sub/f", "/theirs-file"})
    ASSERT_EQ(::chown((dir + n).c_str(), kUid, kUid), 0);
  ASSERT_EQ(::lchown((dir + "/theirs-link").c_str(), kUid, kUid), 0);

  auto removed = remove_entries_owned_by(dir, kUid);
  ASSERT_TRUE(removed) << removed.error().message();
  EXPECT_EQ(*removed, 3u);
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(dir)) left.push_back(e.path().filename());
  EXPECT_EQ(left, std::vector<std::string>{"mine"});
  EXPECT_TRUE(fs::exists("/etc/passwd"));
  EXPECT_EQ(*remove_entries_owned_by(base_ + "/missing", kUid), 0u);
}

TEST_F(ScratchDirTest, BaseControlledBySomeoneElseIsRefused) {
  // Someone else's directory (it usually sits in the world-writable /tmp).
  const std::string foreign = base_ + "/foreign";
  fs::create_directory(foreign);
  ASSERT_EQ(::chown(foreign.c_str(), kUid, kUid), 0);
  auto r = ScratchRoot::create(foreign, true);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().value(), EPERM);
  // Ours, but writable by others.
  const std::string open_dir = base_ + "/open";
  fs::create_directory(open_dir);
  ASSERT_EQ(::chmod(open_dir.c_str(), 0777), 0);
  EXPECT_FALSE(ScratchRoot::create(open_dir, true));
  // A symlink planted in its place.
  fs::create_directory_symlink(base_, base_ + "/link");
  r = ScratchRoot::create(base_ + "/link", true);
  ASSERT_FALSE(r);
  // O_NOFOLLOW | O_DIRECTORY on a symlink: ENOTDIR (Linux) or ELOOP.
  EXPECT_TRUE(r.error().value() == ENOTDIR || r.error().value() == ELOOP) << r.error().message();
  EXPECT_FALSE(ScratchRoot::create("relative/path", true));
}

}  // namespace
}  // namespace pysandbox::jail
