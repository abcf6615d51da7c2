#include "seccomp_policies/syscall_table.hpp"

#include <seccomp.h>

namespace pysandbox::seccomp_policies {

std::optional<int> resolve_syscall(const std::string& name) {
  const int nr = seccomp_syscall_resolve_name_arch(SCMP_ARCH_NATIVE, name.c_str());
  if (nr < 0) return std::nullopt;
  return nr;
}

}  // namespace pysandbox::seccomp_policies
