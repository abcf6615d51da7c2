// A warm sandbox's network namespace, chosen by its zygote just before the fork: one an earlier
// sandbox left (handed back by the server once nothing of that sandbox is left) if it is empty,
// else a fresh one (README, "Warm pool").
//
// Why an empty namespace may be handed on: the only state a sandbox can leave in one is unix
// sockets. Its seccomp policy refuses every other socket family (seccomp_policies/default.policy),
// and it holds no capability over the namespace, which belongs to the host's user namespace (no
// address, route, link state, sysctl or netfilter change). /proc/net/unix lists every unix socket
// of the namespace -- bound, unnamed, or kept alive only by its own fd in flight -- so an empty
// listing is a namespace in the state it was created in.
#pragma once

#include <string_view>

#include "base/sys/syscalls.hpp"

namespace pysandbox::jail {

// The head of a /proc/net/unix (its header line, then one line per socket): true when it lists no
// socket. Anything but a header alone (a socket line, a truncated or unexpected text) is false.
bool lists_no_unix_socket(std::string_view head) noexcept;

// Whether the calling thread's network namespace holds no unix socket (`proc_fd`: a directory fd
// of a procfs mount).
base::sys::Result<bool> holds_no_unix_socket(int proc_fd) noexcept;

enum class NetworkNamespaceChoice { kReused, kCreated };

// Moves the calling (single-threaded) process into the namespace `reuse_fd` if it holds no unix
// socket, otherwise (or with `reuse_fd` < 0) into a new one. Needs CAP_SYS_ADMIN.
base::sys::Result<NetworkNamespaceChoice> enter_next_network_namespace(int reuse_fd,
                                                                       int proc_fd) noexcept;

}  // namespace pysandbox::jail
