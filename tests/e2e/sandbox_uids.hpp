// Host-side view of sandbox processes: which live processes run with a sandbox uid.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace pysandbox::e2e {

// Pids of host processes whose real uid lies in [first, first + count).
std::vector<pid_t> processes_with_uids(uid_t first, unsigned count);

// Pids of host processes of the server's sandbox uids (its /healthz names the range) that are not
// a warm sandbox made ahead of its run (those wait, by design, between requests): what no run
// may leave behind.
std::vector<pid_t> leftover_sandbox_processes(unsigned short port);

// "pid name state ppid uid" per process, for failure messages.
std::string describe_processes(const std::vector<pid_t>& pids);

}  // namespace pysandbox::e2e
