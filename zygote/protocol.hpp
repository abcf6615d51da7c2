// The server <-> zygote wire protocol, over a SOCK_SEQPACKET pair (one message per record).
//
//   zygote -> server, once:   Hello: a JSON object (<= kMaxHelloBytes) {"ok": true, "pid": ..,
//                             "python": "3.11.2", "preloaded": [...], "preload_ms": ..,
//                             "threads": 1} or {"ok": false, "error": "..."}
//   server -> zygote, per run: SpawnRequest + fds (stdin, stdout, stderr, script, result,
//                             setup_errors[, cgroup dir])
//   zygote -> server, per run: SpawnReply [+ the child's pidfd when pid > 0]
//
// The zygote handles one request at a time and never reads a request's data (the script and
// stdin stay in memfds that only the child reads), so nothing of one request is in the memory the
// next child inherits.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pysandbox::zygote {

inline constexpr std::uint32_t kMagic = 0x7a737970;  // "pysz"
inline constexpr std::size_t kMaxHelloBytes = 4096;
inline constexpr std::size_t kRunFds = 6;  // + 1 with a cgroup

// The zygote's control socket is this fd.
inline constexpr int kControlFd = 3;

struct SpawnRequest {
  std::uint32_t magic = kMagic;
  std::uint32_t has_cgroup = 0;  // the 7th fd is the run's cgroup directory (CLONE_INTO_CGROUP)
  std::uint64_t id = 0;          // echoed in the reply
  std::uint32_t host_uid = 0;
  std::uint32_t host_gid = 0;
  std::uint64_t address_space = 0;
  std::uint64_t cpu_seconds = 0;
  std::uint64_t processes = 0;
  std::uint64_t open_files = 0;
  std::uint64_t file_size = 0;
};

struct SpawnReply {
  std::uint32_t magic = kMagic;
  std::int32_t err = 0;  // errno of a failed clone3 (pid == 0, no fd)
  std::uint64_t id = 0;
  std::int32_t pid = 0;  // > 0: a pidfd is attached
  std::int32_t reserved = 0;
};

}  // namespace pysandbox::zygote
