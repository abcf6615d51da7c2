// The executor of the `rlimit` mode, for hosts that lack what the namespace jail needs (gVisor
// has no clone3, no pidfds, no pivot_root, no cgroupfs): each request runs as a plain child
// process in its own session, as a dedicated unprivileged uid per admission slot (when the
// server is root), in a fresh private scratch directory, under rlimits and, where it loads, a
// seccomp filter. Exits are seen through SIGCHLD + waitid by pid (jail::ChildReaper). When a run
// ends, every process of its uid is killed and the uid checked empty before the response.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "executor/executor.hpp"
#include "executor/run_io.hpp"
#include "executor/settings.hpp"
#include "jail/child_reaper.hpp"
#include "jail/rlimit_spawner.hpp"
#include "jail/scratch_dir.hpp"
#include "seccomp_policies/bpf_program.hpp"

namespace pysandbox::executor {

struct RlimitExecutorOptions {
  // Run each slot as uid_base + slot (needs root). Without it the script runs as the server's
  // own uid: then it could signal the server and leftovers are found by process group only.
  bool switch_ids = true;
  // World-writable directories the script may write to outside its scratch directory (those
  // the jail does not cover with a private tmpfs); after each run the entries its uid left there
  // are removed (switch_ids only: otherwise they cannot be told apart from the server's own).
  std::vector<std::string> shared_tmp_dirs = {"/tmp", "/var/tmp", "/dev/shm", "/run/lock"};
  // The jail mounts a private tmpfs over /tmp (a mount namespace of its own): the run works
  // there (cwd, HOME, TMPDIR = /tmp) and needs no scratch directory of the server's.
  bool private_tmp = false;
};

class RlimitExecutor final : public Executor {
 public:
  // `seccomp` may be null (the filter does not load here); the spawner must point at it.
  // `scratch` is needed unless options.private_tmp.
  RlimitExecutor(boost::asio::any_io_executor io, Settings settings,
                 std::unique_ptr<seccomp_policies::BpfProgram> seccomp, jail::RlimitSpawner spawner,
                 std::optional<jail::ScratchRoot> scratch, RlimitExecutorOptions options,
                 boost::json::object capabilities);

  boost::asio::awaitable<RunOutcome> run(ExecuteRequest request) override;
  Isolation isolation() const override { return Isolation::kRlimit; }
  boost::json::object describe() const override { return capabilities_; }

 private:
  // The run's uid, rlimits and fds.
  jail::RlimitRunParams params_for(const ExecuteRequest& request, const RunIo& io) const;
  // The run's private writable place: a tmpfs over /tmp in its own mount namespace, or else a
  // directory in our scratch root that the run creates for itself, as its own uid. Returns that
  // directory's name (empty: /tmp).
  std::string place_run(jail::RlimitRunParams& params) const;
  // After the run: what it wrote, in its place and in the shared world-writable directories.
  void remove_run_files(const jail::RlimitRunParams& params, const std::string& scratch_name) const;

  Settings settings_;
  std::unique_ptr<seccomp_policies::BpfProgram> seccomp_;  // the spawner's filter
  jail::RlimitSpawner spawner_;
  std::optional<jail::ScratchRoot> scratch_;
  RlimitExecutorOptions options_;
  // Belongs to the io_context (which the server destroys before the executor): never used in
  // the destructor.
  jail::ChildReaper& reaper_;
  boost::json::object capabilities_;
};

}  // namespace pysandbox::executor
