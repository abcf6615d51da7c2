// The network namespaces handed back for reuse: only through a lease's end, bounded, and nothing
// leaks when the pool is gone first (executor/netns_pool.hpp).
#include "executor/netns_pool.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

namespace pysandbox::executor {
namespace {

std::size_t open_fd_count() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

ino_t inode_of(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? st.st_ino : 0;
}

ino_t own_network_namespace() {
  struct stat st {};
  return ::stat("/proc/self/ns/net", &st) == 0 ? st.st_ino : 0;
}

TEST(NetnsPoolTest, ANamespaceIsFreeOnlyOnceItsLeaseEnds) {
  NetnsPool pool(4);
  EXPECT_FALSE(pool.take());
  NetnsLease lease = pool.lease_of(::getpid());
  ASSERT_TRUE(lease);
  EXPECT_EQ(pool.free_count(), 0u) << "leased, not free";
  EXPECT_FALSE(pool.take());
  lease.release();
  EXPECT_FALSE(lease);
  lease.release();  // twice is once
  ASSERT_EQ(pool.free_count(), 1u);
  const auto fd = pool.take();
  ASSERT_TRUE(fd);
  EXPECT_EQ(inode_of(fd.get()), own_network_namespace()) << "the namespace of the pid leased";
  EXPECT_EQ(pool.free_count(), 0u);
}

TEST(NetnsPoolTest, AnEndedLeaseByDestructionOrAssignmentHandsItBack) {
  NetnsPool pool(4);
  { NetnsLease lease = pool.lease_of(::getpid()); }
  EXPECT_EQ(pool.free_count(), 1u);
  NetnsLease a = pool.lease_of(::getpid());
  a = pool.lease_of(::getpid());  // the first one ends here
  EXPECT_EQ(pool.free_count(), 2u);
  NetnsLease moved = std::move(a);
  EXPECT_EQ(pool.free_count(), 2u) << "a move is not an end";
}

TEST(NetnsPoolTest, KeepsAtMostItsBoundAndClosesTheRest) {
  const auto before = open_fd_count();
  {
    NetnsPool pool(1);
    NetnsLease a = pool.lease_of(::getpid());
    NetnsLease b = pool.lease_of(::getpid());
    EXPECT_EQ(open_fd_count(), before + 2);
    a.release();
    b.release();
    EXPECT_EQ(pool.free_count(), 1u);
    EXPECT_EQ(open_fd_count(), before + 1);
  }
  EXPECT_EQ(open_fd_count(), before) << "the pool's free ones close with it";
}

TEST(NetnsPoolTest, ALeaseOutlivingItsPoolClosesItsNamespace) {
  const auto before = open_fd_count();
  NetnsLease lease;
  {
    NetnsPool pool(4);
    lease = pool.lease_of(::getpid());
    ASSERT_TRUE(lease);
  }
  lease.release();
  EXPECT_EQ(open_fd_count(), before);
}

TEST(NetnsPoolTest, AProcessThatIsGoneGivesAnEmptyLease) {
  NetnsPool pool(4);
  // Above pid_max (at most 2^22): no such process.
  EXPECT_FALSE(pool.lease_of(1 << 23));
  EXPECT_EQ(pool.free_count(), 0u);
}

}  // namespace
}  // namespace pysandbox::executor
