// What a leaf used, read after the run (cgroup-v2.rst: memory.peak, memory.events, cpu.stat,
// pids.events) and the parsers for those flat-keyed files.
#pragma once

#include <cstdint>
#include <string_view>

namespace pysandbox::cgroups {

struct LeafStats {
  // memory.peak: the high-water mark of memory.current since the leaf was created (>= 5.19).
  // Older kernels lack it; then this is memory.current sampled when stats() ran (after the run
  // that is usually page cache left behind, not the peak) and memory_peak_exact is false.
  std::uint64_t memory_peak_bytes = 0;
  bool memory_peak_exact = true;

  // memory.events (hierarchical): "max" = times usage hit memory.max and reclaim ran; "oom" =
  // times the OOM path was entered; "oom_kill" = processes killed by the OOM killer.
  std::uint64_t memory_max_events = 0;
  std::uint64_t oom = 0;
  std::uint64_t oom_kill = 0;

  // cpu.stat.
  std::uint64_t cpu_usage_usec = 0;
  std::uint64_t cpu_user_usec = 0;
  std::uint64_t cpu_system_usec = 0;
  std::uint64_t cpu_nr_periods = 0;
  std::uint64_t cpu_nr_throttled = 0;
  std::uint64_t cpu_throttled_usec = 0;

  // pids.events "max": forks refused because pids.max was reached.
  std::uint64_t pids_max_events = 0;
};

// Fill the matching fields from each file's text; absent keys leave fields at 0.
void parse_memory_events(std::string_view text, LeafStats& stats);
void parse_cpu_stat(std::string_view text, LeafStats& stats);
void parse_pids_events(std::string_view text, LeafStats& stats);

}  // namespace pysandbox::cgroups
