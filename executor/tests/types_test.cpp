// The wire names of the executor's enums.
#include "executor/types.hpp"

#include <gtest/gtest.h>

namespace pysandbox::executor {
namespace {

TEST(StartPath, NamesAreTheResponsesAndTheLogsLabelsAddTheZygote) {
  struct Case {
    StartPath start;
    const char* zygote;
    const char* name;
    const char* label;
  };
  const Case cases[] = {
      {StartPath::kCold, "", "cold", "cold"},
      {StartPath::kWarm, "minimal", "warm", "warm:minimal"},
      {StartPath::kWarm, "preloaded", "warm", "warm:preloaded"},
  };
  for (const auto& c : cases) {
    RunOutcome o;
    o.start = c.start;
    o.zygote = c.zygote;
    EXPECT_EQ(to_string(o.start), c.name);
    EXPECT_EQ(start_label(o), c.label);
  }
  EXPECT_EQ(RunOutcome{}.start, StartPath::kCold);
}

}  // namespace
}  // namespace pysandbox::executor
