#include "seccomp_policies/bpf_program.hpp"

#include <linux/seccomp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <limits>
#include <utility>

namespace pysandbox::seccomp_policies {
namespace {

// seccomp(2) without glibc's wrapper: a CLONE_VM child shares the parent's errno, so leave it.
long raw_seccomp(unsigned long operation, unsigned long flags, const void* args) noexcept {
#if defined(__x86_64__)
  long result;
  asm volatile("syscall"
               : "=a"(result)
               : "0"(static_cast<long>(SYS_seccomp)), "D"(operation), "S"(flags), "d"(args)
               : "rcx", "r11", "memory");
  return result;
#else
  const int saved = errno;
  const long result = ::syscall(SYS_seccomp, operation, flags, args);
  const long error = result < 0 ? -errno : result;
  errno = saved;
  return error;
#endif
}

}  // namespace

BpfProgram::BpfProgram() noexcept { point_at_storage(); }

BpfProgram::BpfProgram(std::vector<sock_filter> instructions)
    : instructions_(std::move(instructions)) {
  point_at_storage();
}

BpfProgram::BpfProgram(const BpfProgram& other) : instructions_(other.instructions_) {
  point_at_storage();
}

BpfProgram::BpfProgram(BpfProgram&& other) noexcept
    : instructions_(std::move(other.instructions_)) {
  point_at_storage();
  other.instructions_.clear();
  other.point_at_storage();
}

BpfProgram& BpfProgram::operator=(const BpfProgram& other) {
  if (this != &other) {
    instructions_ = other.instructions_;
    point_at_storage();
  }
  return *this;
}

BpfProgram& BpfProgram::operator=(BpfProgram&& other) noexcept {
  if (this != &other) {
    instructions_ = std::move(other.instructions_);
    point_at_storage();
    other.instructions_.clear();
    other.point_at_storage();
  }
  return *this;
}

void BpfProgram::point_at_storage() noexcept {
  // The compiler caps programs at BPF_MAXINSNS, far below the 16-bit len.
  fprog_.len = static_cast<unsigned short>(
      std::min<std::size_t>(instructions_.size(), std::numeric_limits<unsigned short>::max()));
  fprog_.filter = instructions_.empty() ? nullptr : instructions_.data();
}

int install(const BpfProgram& program) noexcept {
  if (program.instruction_count() == 0) return EINVAL;
  const long result = raw_seccomp(SECCOMP_SET_MODE_FILTER, 0, &program.fprog());
  return result < 0 ? static_cast<int>(-result) : 0;
}

}  // namespace pysandbox::seccomp_policies
