// Emptying a cgroup: cgroup.kill, then waiting until cgroup.events reports "populated 0".
// cgroup-v2.rst, "Core Interface Files": writing "1" to cgroup.kill SIGKILLs every process in the
// cgroup and its descendants (kernel >= 5.14); cgroup.events "generates file modified events" when
// "populated" changes, so we wait on an inotify IN_MODIFY watch instead of polling the file.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <string>
#include <string_view>

#include "cgroups/error.hpp"

namespace pysandbox::cgroups::detail {

// Writes "1" to <leaf>/cgroup.kill. Without cgroup.kill (kernel < 5.14) it falls back to
// SIGKILL for every pid listed in cgroup.procs (racy against forks; pids.max bounds it and the
// caller's wait loop repeats it). A cgroup that no longer exists counts as killed.
Result<void> kill_cgroup(int leaf_fd, std::string_view leaf_path);

// "populated" from <leaf>/cgroup.events; a removed cgroup reads as not populated.
Result<bool> read_populated(int leaf_fd, std::string_view leaf_path);

// Blocks (poll on an inotify fd) until the leaf is unpopulated or `timeout` passes (ETIMEDOUT).
// Only for startup and last-resort paths: it blocks the calling thread.
Result<void> wait_unpopulated(int leaf_fd, const std::string& leaf_path,
                              std::chrono::milliseconds timeout);

// Same on the calling coroutine's executor: the inotify fd lives in a posix::stream_descriptor,
// raced against a steady_timer; the event loop is never blocked.
boost::asio::awaitable<Result<void>> async_wait_unpopulated(int leaf_fd, std::string leaf_path,
                                                            std::chrono::milliseconds timeout);

}  // namespace pysandbox::cgroups::detail
