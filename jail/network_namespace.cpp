#include "jail/network_namespace.hpp"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>

#include "base/sys/unique_fd.hpp"

namespace pysandbox::jail {

bool lists_no_unix_socket(std::string_view head) noexcept {
  const auto end_of_header = head.find('\n');
  // The header names the columns; the kernel prints it even for an empty namespace.
  return end_of_header != std::string_view::npos && head.substr(0, 4) == "Num " &&
         end_of_header + 1 == head.size();
}

namespace {

// result<bool> would take an error_code for a bool.
base::sys::Result<bool> failed() noexcept {
  return {boost::system::in_place_error, base::sys::last_errno()};
}

}  // namespace

base::sys::Result<bool> holds_no_unix_socket(int proc_fd) noexcept {
  // thread-self: the listing is the namespace of the task that opens it.
  base::sys::UniqueFd listing(::openat(proc_fd, "thread-self/net/unix", O_RDONLY | O_CLOEXEC));
  if (!listing) return failed();
  // The header (~70 bytes) and the start of a first socket line, if there is one.
  char head[256];
  std::size_t got = 0;
  while (got < sizeof head) {
    const ssize_t n = ::read(listing.get(), head + got, sizeof head - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return failed();
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  return lists_no_unix_socket(std::string_view(head, got));
}

base::sys::Result<NetworkNamespaceChoice> enter_next_network_namespace(int reuse_fd,
                                                                       int proc_fd) noexcept {
  if (reuse_fd >= 0 && ::setns(reuse_fd, CLONE_NEWNET) == 0) {
    if (auto empty = holds_no_unix_socket(proc_fd); empty && *empty)
      return NetworkNamespaceChoice::kReused;
  }
  // Never the namespace we are in: it may be a live sandbox's (the one forked last) or hold what
  // a finished one left.
  if (::unshare(CLONE_NEWNET) != 0) return base::sys::last_errno();
  return NetworkNamespaceChoice::kCreated;
}

}  // namespace pysandbox::jail
