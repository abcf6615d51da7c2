#include "cgroups/stats.hpp"

#include "cgroups/cgroupfs.hpp"

namespace pysandbox::cgroups {

namespace {

void set(std::string_view text, std::string_view key, std::uint64_t& field) {
  if (auto value = fs::flat_keyed_value(text, key)) field = *value;
}

}  // namespace

void parse_memory_events(std::string_view text, LeafStats& stats) {
  set(text, "max", stats.memory_max_events);
  set(text, "oom", stats.oom);
  set(text, "oom_kill", stats.oom_kill);
}

void parse_cpu_stat(std::string_view text, LeafStats& stats) {
  set(text, "usage_usec", stats.cpu_usage_usec);
  set(text, "user_usec", stats.cpu_user_usec);
  set(text, "system_usec", stats.cpu_system_usec);
  set(text, "nr_periods", stats.cpu_nr_periods);
  set(text, "nr_throttled", stats.cpu_nr_throttled);
  set(text, "throttled_usec", stats.cpu_throttled_usec);
}

void parse_pids_events(std::string_view text, LeafStats& stats) {
  set(text, "max", stats.pids_max_events);
}

}  // namespace pysandbox::cgroups
