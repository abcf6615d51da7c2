// Assembles the warm path of the namespace modes: the zygote pool, or why there is none.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <memory>
#include <string>

#include "executor/settings.hpp"
#include "executor/uid_pool.hpp"
#include "executor/zygote_pool.hpp"
#include "jail/namespace_spawner.hpp"

namespace pysandbox::executor {

// The warm path's zygotes get the cold path's jail, flag by flag: same interpreter, runner, seccomp
// policy, read-only paths and tmpfs size. Null, with `why_not` set, when there is no pool.
std::unique_ptr<ZygotePool> assemble_pool(boost::asio::any_io_executor io, const Settings& settings,
                                          const jail::JailConfig& config, UidPool& uids,
                                          std::string& why_not);

}  // namespace pysandbox::executor
