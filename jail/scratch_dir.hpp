// Private writable directories for the `rlimit` mode where the run has no tmpfs of its own: one
// per run, created by the run itself (as its own uid) inside this server's scratch root, and
// removed afterwards without ever following a symlink the script may have planted.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <vector>

#include "base/sys/syscalls.hpp"

namespace pysandbox::jail {

// Removes the entry `name` of the directory `parent_fd` and, for a directory, everything below
// it. Never follows symlinks (they are unlinked, not their targets); walks back up through ".."
// only after finding the directory it came from in the listing there, and never above `name`;
// keeps two fds open and allocates nothing however deep the tree is, so it may run in a forked
// child (async-signal-safe). ENOENT counts as success. Returns 0 or an errno. Run it once
// nothing can write into the tree any more (every process of the run is gone).
int remove_tree_raw(int parent_fd, const char* name) noexcept;

// Removes the entries directly in `dir` whose owner is `uid` (a directory with all it holds),
// e.g. what a run left in /tmp; adds how many to `*removed`. A missing `dir` is not an error.
// Async-signal-safe. Returns 0 or an errno (the first failure; it carries on past it).
int remove_entries_owned_by_raw(const char* dir, uid_t uid, std::size_t* removed) noexcept;

// The names of the entries of the directory `dir_fd` owned by `uid` (server side: it owns the
// scratch root and may list it; the runs may not).
base::sys::Result<std::vector<std::string>> entries_owned_by(int dir_fd, uid_t uid);

// The same, for use in the server.
base::sys::Result<void> remove_tree_at(int parent_fd, const char* name);
base::sys::Result<std::size_t> remove_entries_owned_by(const std::string& dir, uid_t uid);

// This server instance's directory of run directories: <base>/srv-<pid>-<n>, removed with what
// is left in it on destruction. With `shared` (runs use uids other than ours) it is mode 1733:
// each run creates its own directory in it (so the server needs no CAP_CHOWN), under a name
// nobody can guess (so nobody can claim it first), and cannot list or remove the others'. Else
// 0700. `base` is created mode 0711 if missing; an existing one must be a real directory of ours
// that nobody else can write, or the server could be made to work in a directory someone else
// controls (it usually sits in the world-writable /tmp). Directories of servers that are gone
// (srv-<pid>-* without a process <pid>, left by a SIGKILL) are removed as far as we may.
class ScratchRoot {
 public:
  static base::sys::Result<ScratchRoot> create(const std::string& base, bool shared);
  ScratchRoot(ScratchRoot&&) noexcept = default;
  ScratchRoot& operator=(ScratchRoot&&) noexcept;
  ~ScratchRoot();

  const std::string& path() const noexcept { return path_; }
  int fd() const noexcept { return fd_.get(); }

  // "run-" and 32 random hex digits.
  static std::string new_run_name();

 private:
  ScratchRoot() = default;
  void remove() noexcept;

  std::string path_;
  base::sys::UniqueFd base_fd_;  // `base`, where our directory is an entry
  std::string name_;             // our entry in `base`
  base::sys::UniqueFd fd_;       // our directory
};

}  // namespace pysandbox::jail
