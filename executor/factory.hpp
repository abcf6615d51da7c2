// Builds the executor for the strongest isolation mode this host supports (or the forced one).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <memory>

#include "executor/executor.hpp"
#include "executor/settings.hpp"

namespace pysandbox::executor {

// Probes the host, logs one line per capability, and throws std::runtime_error with an
// operator-facing explanation if the mode would fall below settings.min_isolation or the
// forced mode is unavailable.
std::unique_ptr<Executor> make_executor(boost::asio::any_io_executor io, const Settings& settings);

}  // namespace pysandbox::executor
