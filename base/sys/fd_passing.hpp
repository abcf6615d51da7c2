// File descriptors over a Unix socket (SCM_RIGHTS): how the server hands a zygote the fds of one
// run and gets the child's pidfd back.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <span>

#include "base/sys/syscalls.hpp"

namespace pysandbox::base::sys {

// Upper bound on the fds of one message, both directions.
inline constexpr std::size_t kMaxPassedFds = 8;

// A connected SOCK_SEQPACKET pair, both ends O_CLOEXEC (one message per send, never merged or
// split, and EOF when the peer closes).
struct SocketPair {
  UniqueFd first;
  UniqueFd second;
};
Result<SocketPair> make_seqpacket_pair();

// One sendmsg of `data` with `fds` attached (at most kMaxPassedFds). MSG_NOSIGNAL: a dead peer is
// EPIPE, not a signal.
Result<void> send_with_fds(int sock, std::span<const std::byte> data, std::span<const int> fds);

struct Received {
  std::size_t bytes = 0;  // 0 = the peer closed
  std::size_t fd_count = 0;
  UniqueFd fds[kMaxPassedFds];
  bool truncated = false;  // the message or its fds did not fit: a protocol error
};
// One recvmsg; passed fds arrive O_CLOEXEC (MSG_CMSG_CLOEXEC) and are owned by the result, so
// none can leak whatever the caller does next.
Result<Received> recv_with_fds(int sock, std::span<std::byte> buffer);

}  // namespace pysandbox::base::sys
