// The `sandboxes` cgroup shared by a Delegation and all its LeafCgroups (held by shared_ptr, so a
// leaf may outlive the Delegation object): creating, removing and last-resort destruction of
// leaves, by libcgroup or by direct cgroupfs I/O, plus the StaleLeafReaper.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "base/sys/unique_fd.hpp"
#include "cgroups/error.hpp"
#include "cgroups/libcgroup_backend.hpp"
#include "cgroups/stale_leaf_reaper.hpp"

namespace pysandbox::cgroups::detail {

enum class Backend { kLibcgroup, kDirect };

struct SandboxesConfig {
  std::string mount_point;  // the cgroup2 mount
  std::string dir;          // absolute path of the sandboxes cgroup
  Backend backend = Backend::kDirect;
  std::string backend_note;  // why direct I/O, when it is
  bool swap_max = false;     // memory.swap.max exists (swap accounting on)
  bool memory_peak = false;  // memory.peak exists (kernel >= 5.19)
  std::chrono::milliseconds kill_timeout{5000};
};

class Sandboxes {
 public:
  Sandboxes(SandboxesConfig config, base::sys::UniqueFd dir_fd);
  Sandboxes(const Sandboxes&) = delete;
  Sandboxes& operator=(const Sandboxes&) = delete;
  // Retries the reaper with a bounded wait (kill_timeout per leaf) and logs what survives.
  ~Sandboxes();

  const SandboxesConfig& config() const noexcept { return config_; }
  int dir_fd() const noexcept { return dir_fd_.get(); }
  std::string leaf_path(const std::string& name) const;

  // Creates <dir>/<name> (which must not exist) with `values` written, and opens it
  // O_RDONLY|O_DIRECTORY|O_CLOEXEC. On failure the half-made leaf is removed again.
  Result<base::sys::UniqueFd> create(const std::string& name,
                                     const std::vector<ControlValue>& values);

  // rmdir of an unpopulated leaf (child cgroups first, if it has any). A missing leaf counts as
  // removed. EBUSY while processes remain.
  Result<void> remove(const std::string& name);

  // kill, wait up to `grace` for "populated 0", remove. `leaf_fd` may be -1 (opened here).
  Result<void> try_destroy(const std::string& name, int leaf_fd, std::chrono::milliseconds grace);

  // Logs `why` and hands the (killed) leaf to the reaper.
  void adopt(const std::string& name, const Error& why);

  // try_destroy; on failure logs and hands the leaf to the reaper. True if removed.
  bool destroy_or_adopt(const std::string& name, int leaf_fd, std::chrono::milliseconds grace);

  // One pass over the reaper without waiting (safe on the event loop). Returns what is pending.
  std::size_t reap();
  std::size_t pending() const { return reaper_.pending(); }

 private:
  Result<void> remove_children(int leaf_fd, const std::string& leaf_path);

  SandboxesConfig config_;
  std::string relative_;  // config_.dir below the mount point, as libcgroup names cgroups
  base::sys::UniqueFd dir_fd_;
  StaleLeafReaper reaper_;
};

}  // namespace pysandbox::cgroups::detail
