#include "beast_server/fd_budget.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

namespace pysandbox::beast_server {
namespace {

TEST(FdBudget, PlanTable) {
  struct Case {
    std::uint64_t limit, baseline;
    unsigned concurrency, zygotes;
    std::size_t configured;
    std::size_t expected;  // 0: refused
  };
  const Case cases[] = {
      // systemd's default soft limit: what is left after 2 runs, 2 zygotes and the margin.
      {1024, 20, 2, 2, 1024, 1024 - 20 - (2 * kFdsPerRun + 2 * kFdsPerZygote + kFdSlack)},
      // The configured cap wins when the budget is larger.
      {1u << 20, 20, 2, 2, 1024, 1024},
      // Many runs eat into the connections.
      {4096, 30, 64, 2, 100000, 4096 - 30 - (64 * kFdsPerRun + 2 * kFdsPerZygote + kFdSlack)},
      // Too few left: refuse to start.
      {200, 20, 8, 2, 1024, 0},
      {256, 20, 8, 2, 1024, 256 - 20 - (8 * kFdsPerRun + 2 * kFdsPerZygote + kFdSlack)},
      {64, 10, 1, 0, 1024, 0},
  };
  for (const auto& c : cases) {
    const auto plan = plan_fd_budget(c.limit, c.baseline, c.concurrency, c.zygotes, c.configured);
    if (c.expected == 0) {
      ASSERT_TRUE(std::holds_alternative<std::string>(plan)) << c.limit;
      EXPECT_NE(std::get<std::string>(plan).find("RLIMIT_NOFILE"), std::string::npos);
      continue;
    }
    ASSERT_TRUE(std::holds_alternative<FdPlan>(plan)) << std::get<std::string>(plan);
    const FdPlan& p = std::get<FdPlan>(plan);
    EXPECT_EQ(p.max_connections, c.expected) << c.limit;
    // Connections at the cap plus the reserve never exceed the limit.
    EXPECT_LE(p.baseline + p.reserved + p.max_connections, p.limit);
  }
}

TEST(FdBudget, RoomForRun) {
  EXPECT_TRUE(room_for_run(100, 1024));
  EXPECT_TRUE(room_for_run(1024 - kFdsPerRun - kFdSlack / 4, 1024));
  EXPECT_FALSE(room_for_run(1024 - kFdsPerRun - kFdSlack / 4 + 1, 1024));
  EXPECT_FALSE(room_for_run(1024, 1024));
}

TEST(FdBudget, CountsOpenDescriptors) {
  const std::uint64_t before = count_open_fds();
  const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(count_open_fds(), before + 1);
  ::close(fd);
  EXPECT_EQ(count_open_fds(), before);
}

TEST(FdBudget, RaiseNofileLimitReachesTheHardLimit) {
  const NofileLimit limit = raise_nofile_limit();
  EXPECT_EQ(limit.soft, limit.hard);
  EXPECT_EQ(nofile_limit(), limit.hard);
  EXPECT_LE(limit.soft_before, limit.soft);
}

}  // namespace
}  // namespace pysandbox::beast_server
