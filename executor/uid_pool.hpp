// The host uids sandboxes run as (root inside a sandbox's user namespace maps to one of them).
// No two live sandboxes ever share one: a uid is leased to a sandbox when it is made (a warm
// sandbox is made before its run, so its uid cannot be its admission slot's) and comes back only
// once no process of that sandbox is left. Single-threaded, like the io_context it lives on.
#pragma once

#include <sys/types.h>

#include <memory>
#include <vector>

namespace pysandbox::executor {

// Owns one uid of a pool until destroyed or released; outliving the pool is harmless.
class UidLease {
 public:
  UidLease() = default;
  UidLease(UidLease&& other) noexcept = default;
  UidLease& operator=(UidLease&& other) noexcept;
  UidLease(const UidLease&) = delete;
  UidLease& operator=(const UidLease&) = delete;
  ~UidLease() { release(); }

  explicit operator bool() const noexcept { return in_use_ != nullptr; }
  uid_t uid() const noexcept { return uid_; }
  void release() noexcept;

 private:
  friend class UidPool;
  UidLease(std::shared_ptr<std::vector<bool>> in_use, uid_t first, uid_t uid)
      : in_use_(std::move(in_use)), first_(first), uid_(uid) {}
  std::shared_ptr<std::vector<bool>> in_use_;
  uid_t first_ = 0;
  uid_t uid_ = 0;
};

class UidPool {
 public:
  // The uids [first, first + count).
  UidPool(uid_t first, unsigned count)
      : first_(first), in_use_(std::make_shared<std::vector<bool>>(count, false)) {}

  // The lowest free uid; an empty lease when every uid is leased.
  UidLease acquire();

  uid_t first() const noexcept { return first_; }
  unsigned count() const noexcept { return static_cast<unsigned>(in_use_->size()); }
  unsigned leased() const noexcept;

 private:
  uid_t first_;
  std::shared_ptr<std::vector<bool>> in_use_;
};

}  // namespace pysandbox::executor
