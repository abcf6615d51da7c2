// Whether other uids are kept from reading the server's environment through /proc.
#pragma once

#include <sys/types.h>

#include "probe/facility.hpp"

namespace pysandbox::probe {

// Whether a process of `uid` (unprivileged) is refused our /proc/<pid>/environ, as Linux does
// (ptrace access mode). gVisor 2022-12 lets any uid read it, and maps, auxv and the fd list.
Facility proc_environ_protected(uid_t uid, gid_t gid);

}  // namespace pysandbox::probe
