// Syscall names of the native architecture, as libseccomp knows them.
#pragma once

#include <optional>
#include <string>

namespace pysandbox::seccomp_policies {

// The native syscall number, or nothing if this libseccomp does not know the name or it is not a
// real syscall here (libseccomp's negative pseudo-numbers, e.g. socketcall on x86_64).
std::optional<int> resolve_syscall(const std::string& name);

}  // namespace pysandbox::seccomp_policies
