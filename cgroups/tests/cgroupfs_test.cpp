// Parsers and small helpers: pure functions, run anywhere.
#include "cgroups/cgroupfs.hpp"

#include <gtest/gtest.h>

#include <string>

#include "cgroups/leaf_cgroup.hpp"
#include "cgroups/stale_leaf_reaper.hpp"
#include "cgroups/stats.hpp"

namespace pysandbox::cgroups {
namespace {

TEST(CgroupfsParse, SplitWordsAndHasWord) {
  EXPECT_EQ(fs::split_words("cpuset cpu io memory hugetlb pids rdma misc\n"),
            (std::vector<std::string>{"cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma",
                                      "misc"}));
  EXPECT_TRUE(fs::split_words("\n").empty());
  EXPECT_TRUE(fs::has_word("cpu memory pids\n", "pids"));
  EXPECT_FALSE(fs::has_word("cpuset memory\n", "cpu"));  // no prefix match
}

TEST(CgroupfsParse, FlatKeyedValue) {
  const std::string events = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 1\n";
  EXPECT_EQ(fs::flat_keyed_value(events, "max"), 12u);
  EXPECT_EQ(fs::flat_keyed_value(events, "oom"), 3u);  // not "oom_kill"
  EXPECT_EQ(fs::flat_keyed_value(events, "oom_kill"), 2u);
  EXPECT_EQ(fs::flat_keyed_value(events, "missing"), std::nullopt);
  EXPECT_EQ(fs::flat_keyed_value("populated 1\nfrozen 0", "frozen"), 0u);  // no final newline
  EXPECT_EQ(fs::flat_keyed_value("max garbage\n", "max"), std::nullopt);
}

TEST(CgroupfsParse, ParseU64) {
  EXPECT_EQ(fs::parse_u64("52428800\n"), 52428800u);
  EXPECT_EQ(fs::parse_u64("max\n"), std::nullopt);
  EXPECT_EQ(fs::parse_u64(""), std::nullopt);
  EXPECT_EQ(fs::parse_u64("12 34"), std::nullopt);
}

TEST(CgroupfsParse, Join) {
  EXPECT_EQ(fs::join("/sys/fs/cgroup", "a"), "/sys/fs/cgroup/a");
  EXPECT_EQ(fs::join("/sys/fs/cgroup/", "/a"), "/sys/fs/cgroup/a");
}

TEST(LeafStatsParse, MemoryEvents) {
  LeafStats stats;
  parse_memory_events("low 0\nhigh 0\nmax 57\noom 1\noom_kill 1\noom_group_kill 1\n", stats);
  EXPECT_EQ(stats.memory_max_events, 57u);
  EXPECT_EQ(stats.oom, 1u);
  EXPECT_EQ(stats.oom_kill, 1u);
}

TEST(LeafStatsParse, CpuStat) {
  LeafStats stats;
  parse_cpu_stat(
      "usage_usec 301234\nuser_usec 300000\nsystem_usec 1234\nnr_periods 15\n"
      "nr_throttled 14\nthrottled_usec 1200000\nnr_bursts 0\nburst_usec 0\n",
      stats);
  EXPECT_EQ(stats.cpu_usage_usec, 301234u);
  EXPECT_EQ(stats.cpu_user_usec, 300000u);
  EXPECT_EQ(stats.cpu_system_usec, 1234u);
  EXPECT_EQ(stats.cpu_nr_periods, 15u);
  EXPECT_EQ(stats.cpu_nr_throttled, 14u);
  EXPECT_EQ(stats.cpu_throttled_usec, 1200000u);
}

TEST(LeafStatsParse, CpuStatWithoutCpuController) {
  // Without the cpu controller enabled cpu.stat still has the three usage keys only.
  LeafStats stats;
  parse_cpu_stat("usage_usec 10\nuser_usec 7\nsystem_usec 3\n", stats);
  EXPECT_EQ(stats.cpu_usage_usec, 10u);
  EXPECT_EQ(stats.cpu_nr_throttled, 0u);
}

TEST(LeafStatsParse, PidsEvents) {
  LeafStats stats;
  parse_pids_events("max 9\n", stats);
  EXPECT_EQ(stats.pids_max_events, 9u);
}

TEST(CpuMaxFormat, FractionOfCores) {
  EXPECT_EQ(format_cpu_max(0.2, 100000), "20000 100000");
  EXPECT_EQ(format_cpu_max(1.0, 100000), "100000 100000");
  EXPECT_EQ(format_cpu_max(1.5, 100000), "150000 100000");
  EXPECT_EQ(format_cpu_max(0, 100000), "max 100000");
  EXPECT_EQ(format_cpu_max(-1, 100000), "max 100000");
  EXPECT_EQ(format_cpu_max(0.001, 100000), "1000 100000");    // kernel minimum quota: 1 ms
  EXPECT_EQ(format_cpu_max(0.5, 10), "1000 1000");            // period clamped to >= 1 ms
  EXPECT_EQ(format_cpu_max(0.5, 5000000), "500000 1000000");  // and <= 1 s
}

TEST(StaleLeafReaper, KeepsWhatCannotBeRemoved) {
  StaleLeafReaper reaper;
  reaper.add("a");
  reaper.add("b");
  reaper.add("a");  // once only
  EXPECT_EQ(reaper.pending(), 2u);
  int calls = 0;
  EXPECT_EQ(reaper.retry([&](const std::string& name) {
    ++calls;
    return name == "a";
  }),
            1u);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(reaper.retry([](const std::string&) { return true; }), 0u);
  EXPECT_EQ(reaper.pending(), 0u);
}

}  // namespace
}  // namespace pysandbox::cgroups
