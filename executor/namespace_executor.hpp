// The executor of the `namespaces` mode and, with a cgroup v2 leaf per run, of `full`: one fresh
// jail per request, watched through its pidfd on the io_context.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/system/result.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "cgroups/delegation.hpp"
#include "executor/executor.hpp"
#include "executor/netns_pool.hpp"
#include "executor/settings.hpp"
#include "executor/uid_pool.hpp"
#include "executor/zygote_pool.hpp"
#include "jail/child.hpp"
#include "jail/namespace_spawner.hpp"
#include "seccomp_policies/policy.hpp"

namespace pysandbox::executor {

class NamespaceExecutor final : public Executor {
 public:
  // `seccomp` must outlive the executor's spawner; it is owned here. With a delegation, every run
  // gets its own cgroup leaf and the mode is `full`.
  NamespaceExecutor(boost::asio::any_io_executor io, Settings settings,
                    std::unique_ptr<seccomp_policies::BpfProgram> seccomp,
                    jail::NamespaceSpawner spawner, std::optional<cgroups::Delegation> delegation,
                    boost::json::object capabilities);

  // Turns the warm path on (started here); without it every run is a cold start.
  void set_pool(std::unique_ptr<ZygotePool> pool);
  // The uids sandboxes run as; the pool leases its sandboxes' from here too.
  UidPool& uids() { return uids_; }
  // Why there is no pool (for /healthz), when there is none.
  void set_pool_off_reason(std::string reason) { pool_off_reason_ = std::move(reason); }

  boost::asio::awaitable<RunOutcome> run(ExecuteRequest request) override;
  Isolation isolation() const override {
    return delegation_ ? Isolation::kFull : Isolation::kNamespaces;
  }
  boost::json::object describe() const override { return capabilities_; }
  boost::json::object pool_state() const override;
  PoolStats pool_stats() const override { return pool_ ? pool_->stats() : PoolStats{}; }
  bool ready() const override { return !pool_ || pool_->ready(); }
  void shutdown() override { pool_.reset(); }

 private:
  // A sandbox with its run handed over, from a zygote (`zygote`: its flavour) or cold (empty).
  struct Started {
    NetnsLease network;  // a warm sandbox's network namespace, until nothing of it is left
    std::unique_ptr<jail::Child> init;
    base::sys::UniqueFd channel;
    UidLease uid;  // until nothing of the sandbox is left
    std::string zygote;
  };
  using Start = boost::system::result<Started, std::string>;  // error: for the log only

  // full mode: the run's own cgroup leaf, which `params` then starts in and whose limits it
  // loosens its rlimits for; nullopt in namespaces mode.
  cgroups::Result<std::optional<cgroups::LeafCgroup>> make_leaf(const ExecuteRequest& request,
                                                                jail::RunParams& params);
  // Warm when a zygote has a sandbox ready for the script, else cold (as a uid of uids_).
  boost::asio::awaitable<Start> start(const ExecuteRequest& request, jail::RunParams& params);

  boost::asio::any_io_executor io_;
  Settings settings_;
  std::unique_ptr<seccomp_policies::BpfProgram> seccomp_;
  jail::NamespaceSpawner spawner_;
  std::optional<cgroups::Delegation> delegation_;
  std::uint64_t runs_ = 0;  // names cgroup leaves uniquely
  boost::json::object capabilities_;
  UidPool uids_;
  std::unique_ptr<ZygotePool> pool_;
  std::string pool_off_reason_ = "--pool off";
};

}  // namespace pysandbox::executor
