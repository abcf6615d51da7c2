// The server <-> zygote wire protocol, over a SOCK_SEQPACKET pair (one message per record), and
// the server -> warm sandbox handover.
//
//   server -> zygote, once:        Config: a JSON object (<= kMaxConfigBytes), see zygote.py
//   zygote -> server, once:        Hello: a JSON object (<= kMaxHelloBytes) {"ok": true, "pid":
//                                  .., "python": "3.11.2", "preloaded": [...], "layout": ..}
//                                  or {"ok": false, "error": "..."}
//   server -> zygote, any time:    PreforkRequest: make a sandbox ahead of its run, as `uid`
//                                  [+ fd: a network namespace an earlier sandbox left, to reuse
//                                  if empty (jail/network_namespace.hpp)]
//   zygote -> server, per request: PreforkReply [+ fds: the sandbox init's pidfd, the read end
//                                  of its channel (jail/sandbox_init.hpp), the server's end of
//                                  its handover socket]
//   server -> warm sandbox:        RunMessage + the run's 5 fds (stdin, stdout, stderr, script,
//                                  result), over the handover socket; then the server closes it
//
// The zygote never sees a run: its fds and limits go from the server straight to the sandbox, so
// nothing of one request is in the memory the next sandbox inherits.
#pragma once

#include <cstddef>
#include <cstdint>

#include "jail/child_steps.hpp"  // Rlimits
#include "jail/run_fds.hpp"

namespace pysandbox::zygote {

inline constexpr std::uint32_t kMagic = 0x7a737972;  // "rysz": version 3
inline constexpr std::size_t kMaxConfigBytes = 16384;
inline constexpr std::size_t kMaxHelloBytes = 4096;
inline constexpr std::size_t kReadyFds = 3;                // pidfd, channel, handover
inline constexpr std::size_t kRunFds = jail::kRunFdCount;  // jail/run_fds.hpp

// The zygote's control socket is this fd.
inline constexpr int kControlFd = 3;

struct PreforkRequest {
  std::uint32_t magic = kMagic;
  std::uint32_t reserved = 0;
  std::uint64_t id = 0;  // echoed in the reply
  std::uint32_t host_uid = 0;
  std::uint32_t host_gid = 0;
};

// PreforkReply::network.
enum class NetworkNamespace : std::int32_t {
  kOwn = 0,      // the sandbox created its own (no prebuilt root): never to be reused
  kCreated = 1,  // the zygote created it for this sandbox
  kReused = 2,   // the one the request carried, found empty
};

struct PreforkReply {
  std::uint32_t magic = kMagic;
  std::int32_t err = 0;  // errno of a failed clone3 (pid == 0, no fds)
  std::uint64_t id = 0;
  std::int32_t pid = 0;      // > 0: the sandbox's init; kReadyFds fds are attached
  std::int32_t network = 0;  // NetworkNamespace: where the sandbox's network namespace came from
};

struct RunMessage {
  std::uint32_t magic = kMagic;
  std::uint32_t reserved = 0;
  std::uint64_t address_space = 0;
  std::uint64_t cpu_seconds = 0;
  std::uint64_t processes = 0;
  std::uint64_t open_files = 0;
  std::uint64_t file_size = 0;

  // The run's limits, both ways: the server sends them, the runner sets them.
  static RunMessage carrying(const jail::Rlimits& l) {
    return {kMagic, 0, l.address_space, l.cpu_seconds, l.processes, l.open_files, l.file_size};
  }
  jail::Rlimits limits() const {
    return {address_space, cpu_seconds, processes, open_files, file_size};
  }
};

}  // namespace pysandbox::zygote
