// Decodes the runner's result channel (see jail/runner/runner.py) into a RunOutcome.
#pragma once

#include <string_view>

#include "executor/types.hpp"

namespace pysandbox::executor {

// Sets status, result, message and trace. Returns false when the channel does not hold one
// well-formed protocol message (the caller then decides from the exit status).
bool decode_runner_result(std::string_view channel, RunOutcome& outcome);

}  // namespace pysandbox::executor
