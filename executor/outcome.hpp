// What a run's outcome was, from what supervise() observed: a pure function, the first cause
// wins (the jail failed to set up > the caller cancelled > the deadline > an output cap > what
// the runner reported > the memory cgroup's OOM kill > a signal > an early exit).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "executor/settings.hpp"
#include "executor/supervise.hpp"
#include "executor/types.hpp"
#include "jail/namespace_spawner.hpp"

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

// The setup step the sandbox reported failing, if any, for its spawner to describe.
std::optional<jail::SetupFailure> setup_failure_of(const Supervised& run);

// classify() for a run of `request` under `settings` in `mode`; `setup_failure` as the spawner
// describes setup_failure_of(run) (empty: none).
RunOutcome classify_run(const Supervised& run, const ExecuteRequest& request,
                        const Settings& settings, Isolation mode, std::string setup_failure);

// kCancelled for a request whose caller gave up before its sandbox was made; nullopt otherwise.
std::optional<RunOutcome> cancelled_before_start(const ExecuteRequest& request, Isolation mode);

}  // namespace pysandbox::executor
