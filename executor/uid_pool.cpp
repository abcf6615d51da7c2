#include "executor/uid_pool.hpp"

#include <algorithm>

namespace pysandbox::executor {

UidLease& UidLease::operator=(UidLease&& other) noexcept {
  if (this != &other) {
    release();
    in_use_ = std::move(other.in_use_);
    first_ = other.first_;
    uid_ = other.uid_;
  }
  return *this;
}

void UidLease::release() noexcept {
  if (!in_use_) return;
  (*in_use_)[uid_ - first_] = false;
  in_use_.reset();
}

UidLease UidPool::acquire() {
  auto& used = *in_use_;
  const auto free = std::find(used.begin(), used.end(), false);
  if (free == used.end()) return {};
  *free = true;
  return UidLease(in_use_, first_, first_ + static_cast<uid_t>(free - used.begin()));
}

unsigned UidPool::leased() const noexcept {
  return static_cast<unsigned>(std::count(in_use_->begin(), in_use_->end(), true));
}

}  // namespace pysandbox::executor
