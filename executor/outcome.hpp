// What a run's outcome was, from what supervise() observed: a pure function, the first cause
// wins (the jail failed to set up > the caller cancelled > the deadline > an output cap > what
// the runner reported > the memory cgroup's OOM kill > a signal > an early exit).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "executor/supervise.hpp"
#include "executor/types.hpp"

namespace pysandbox::executor {

struct ClassifyInput {
  // The jail's description of the setup step that failed ("mount: ...: EPERM"); empty: none.
  std::string setup_failure;
  std::chrono::milliseconds timeout{5000};
  std::uint64_t memory_bytes = 0;
  std::size_t max_output_bytes = 0;
};

// Status, message, result, trace, signal, captured output, usage and phase timings. The caller
// adds what only it knows (isolation mode, warm or cold start).
RunOutcome classify(const Supervised& run, const ClassifyInput& input);

}  // namespace pysandbox::executor
