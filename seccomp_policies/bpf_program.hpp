// A compiled seccomp filter and the async-signal-safe call that hands it to the kernel.
#pragma once

#include <linux/filter.h>

#include <cstddef>
#include <vector>

namespace pysandbox::seccomp_policies {

// Owns the instructions; fprog() always points into this object's own storage, also after a copy
// or a move, so a child cloned from the owner can use it without allocating.
class BpfProgram {
 public:
  BpfProgram() noexcept;
  explicit BpfProgram(std::vector<sock_filter> instructions);
  BpfProgram(const BpfProgram& other);
  BpfProgram(BpfProgram&& other) noexcept;
  BpfProgram& operator=(const BpfProgram& other);
  BpfProgram& operator=(BpfProgram&& other) noexcept;
  ~BpfProgram() = default;

  const sock_fprog& fprog() const noexcept { return fprog_; }
  std::size_t instruction_count() const noexcept { return instructions_.size(); }
  const std::vector<sock_filter>& instructions() const noexcept { return instructions_; }

 private:
  void point_at_storage() noexcept;

  std::vector<sock_filter> instructions_;
  sock_fprog fprog_{};
};

// Installs `program` as a seccomp filter of the calling thread (SECCOMP_SET_MODE_FILTER, no
// flags). Only a raw syscall: async-signal-safe, touches no errno, so it is usable between clone
// and execve. The caller must have set PR_SET_NO_NEW_PRIVS (or hold CAP_SYS_ADMIN). Returns 0 or
// an errno value (EINVAL for an empty program).
int install(const BpfProgram& program) noexcept;

}  // namespace pysandbox::seccomp_policies
