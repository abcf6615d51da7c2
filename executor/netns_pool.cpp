#include "executor/netns_pool.hpp"

#include <fcntl.h>

#include <string>

namespace pysandbox::executor {

NetnsLease& NetnsLease::operator=(NetnsLease&& other) noexcept {
  if (this != &other) {
    release();
    pool_ = std::move(other.pool_);
    fd_ = std::move(other.fd_);
  }
  return *this;
}

void NetnsLease::release() noexcept {
  if (!fd_) return;
  auto pool = pool_.lock();
  pool_.reset();
  if (!pool || pool->free.size() >= pool->max_free) {
    fd_.reset();
    return;
  }
  try {
    pool->free.push_back(std::move(fd_));
  } catch (...) {
    fd_.reset();  // no memory to keep it: it is only an optimisation
  }
}

NetnsPool::NetnsPool(std::size_t max_free) : shared_(std::make_shared<NetnsLease::Shared>()) {
  shared_->max_free = max_free;
  shared_->free.reserve(max_free);
}

NetnsLease NetnsPool::lease_of(pid_t pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/ns/net";
  base::sys::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return {};
  return NetnsLease(shared_, std::move(fd));
}

base::sys::UniqueFd NetnsPool::take() {
  if (shared_->free.empty()) return {};
  base::sys::UniqueFd fd = std::move(shared_->free.back());
  shared_->free.pop_back();
  return fd;
}

std::size_t NetnsPool::free_count() const noexcept { return shared_->free.size(); }

}  // namespace pysandbox::executor
