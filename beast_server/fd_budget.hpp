// File descriptors are the server's scarcest resource: every connection holds one, and every
// run needs about a dozen at once (pipes, memfds, a pidfd, a cgroup directory). If connections
// may take them all, runs fail with EMFILE and accept() fails too, so that not even a 503 can
// be sent. The budget reserves what max_concurrency runs, the warm pool and a margin need, and
// caps connections at what is left.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>

#include "executor/settings.hpp"

namespace pysandbox::beast_server {

// Descriptors one run holds at its peak, with a margin: while it is being spawned, both ends of
// its stdout, stderr, result and setup-error pipes, the stdin and script memfds, the pidfd and,
// in full mode, the cgroup leaf's directory (12, from the executor's code); 5 once the script
// runs (measured: the server's count went from 18 to 24 with one warm run and its connection).
inline constexpr std::uint64_t kFdsPerRun = 16;
// Per warm-pool zygote: its socket, pidfd and a restart's transient pair, and per sandbox it
// keeps ahead (executor::kAheadPerZygote) that one's pidfd, channel, handover socket and network
// namespace.
inline constexpr std::uint64_t kFdsPerZygote = 4 + 4 * executor::kAheadPerZygote;
// Refusing or evicting connections, reading /proc, logging, a zygote restart.
inline constexpr std::uint64_t kFdSlack = 64;
// Below this many connections the server would be useless: refuse to start instead.
inline constexpr std::size_t kMinConnections = 16;

struct FdPlan {
  std::uint64_t limit = 0;     // RLIMIT_NOFILE (soft, after raising it)
  std::uint64_t baseline = 0;  // open when the plan was made (listening socket included)
  std::uint64_t reserved = 0;  // for runs, zygotes and the margin
  std::size_t max_connections = 0;
};

// The connection cap for `limit` descriptors: limit - baseline - reserved, at most
// `configured_max_connections`. A sentence for the operator when fewer than kMinConnections
// would be left.
std::variant<FdPlan, std::string> plan_fd_budget(std::uint64_t limit, std::uint64_t baseline,
                                                 unsigned max_concurrency, unsigned zygotes,
                                                 std::size_t configured_max_connections);

// Whether a run may start with `open` descriptors in use: otherwise it would fail half-way for
// want of descriptors, and the client gets 503 instead.
bool room_for_run(std::uint64_t open, std::uint64_t limit);

struct NofileLimit {
  std::uint64_t soft_before = 0;
  std::uint64_t soft = 0;
  std::uint64_t hard = 0;
};

// Raises the soft RLIMIT_NOFILE to the hard one (systemd and some container runtimes leave the
// soft limit at 1024 for select()'s sake; the server uses epoll). Returns the limits.
NofileLimit raise_nofile_limit();

// The current soft RLIMIT_NOFILE.
std::uint64_t nofile_limit();

// Descriptors open in this process now (entries of /proc/self/fd, less the one listing it).
std::uint64_t count_open_fds();

}  // namespace pysandbox::beast_server
