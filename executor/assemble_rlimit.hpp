// Assembles the rlimit mode's executor: its seccomp policy, rlimits and the namespaces a root
// server can still use, each probed here, its scratch directories, and a trial run of its jail.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <memory>
#include <string>

#include "executor/executor.hpp"
#include "executor/mode.hpp"
#include "executor/settings.hpp"

namespace pysandbox::executor {

// Throws std::runtime_error when not even this jail works here. `explicit_policy`: the operator
// chose the seccomp policy (otherwise rlimit mode uses its own, rlimit.policy).
std::unique_ptr<Executor> assemble_rlimit(boost::asio::any_io_executor io, Settings settings,
                                          bool explicit_policy, const std::string& runner,
                                          const ModeDecision& decision);

}  // namespace pysandbox::executor
