// Network namespaces the zygotes' sandboxes leave behind, for their next ones. Creating one costs
// a zygote ~0.5 ms and the kernel's cleanup worker ~0.3 ms on these machines, on every request;
// handing back the ones whose sandbox is gone, and letting the zygote reuse them when they hold
// nothing (jail/network_namespace.hpp), takes that off. No two live sandboxes ever share one: a
// namespace comes back only once no process of its sandbox is left, as a uid does
// (executor/uid_pool.hpp). Single-threaded, like the io_context it lives on.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "base/sys/unique_fd.hpp"

namespace pysandbox::executor {

// Holds a sandbox's network namespace (an fd of it) until destroyed or released: then it goes to
// its pool's free list, or is closed if the pool is gone or full.
class NetnsLease {
 public:
  NetnsLease() = default;
  NetnsLease(NetnsLease&& other) noexcept = default;
  NetnsLease& operator=(NetnsLease&& other) noexcept;
  NetnsLease(const NetnsLease&) = delete;
  NetnsLease& operator=(const NetnsLease&) = delete;
  ~NetnsLease() { release(); }

  explicit operator bool() const noexcept { return static_cast<bool>(fd_); }
  // Nothing of the sandbox may be left by now.
  void release() noexcept;

 private:
  friend class NetnsPool;
  struct Shared;
  NetnsLease(std::weak_ptr<Shared> pool, base::sys::UniqueFd fd)
      : pool_(std::move(pool)), fd_(std::move(fd)) {}
  std::weak_ptr<Shared> pool_;
  base::sys::UniqueFd fd_;
};

class NetnsPool {
 public:
  // At most `max_free` namespaces wait for reuse (one per sandbox that can be alive at once is
  // all that is ever needed); more are closed.
  explicit NetnsPool(std::size_t max_free);
  NetnsPool(const NetnsPool&) = delete;
  NetnsPool& operator=(const NetnsPool&) = delete;

  // The network namespace of process `pid` (a sandbox's init, our unreaped child, so the pid
  // cannot be reused), until its lease ends. An empty lease if it cannot be opened.
  NetnsLease lease_of(pid_t pid);
  // A namespace no sandbox is in any more (most recently handed back first), or an empty fd.
  base::sys::UniqueFd take();

  std::size_t free_count() const noexcept;

 private:
  std::shared_ptr<NetnsLease::Shared> shared_;
};

struct NetnsLease::Shared {
  std::size_t max_free = 0;
  std::vector<base::sys::UniqueFd> free;
};

}  // namespace pysandbox::executor
