#include "executor/namespace_executor.hpp"

#include <signal.h>

#include <optional>

#include "base/log.hpp"
#include "cgroups/error.hpp"
#include "executor/outcome.hpp"
#include "executor/run_io.hpp"
#include "executor/supervise.hpp"
#include "jail/child.hpp"

namespace pysandbox::executor {

namespace {

using boost::asio::awaitable;

}  // namespace

NamespaceExecutor::NamespaceExecutor(boost::asio::any_io_executor io, Settings settings,
                                     std::unique_ptr<seccomp_policies::BpfProgram> seccomp,
                                     jail::NamespaceSpawner spawner,
                                     std::optional<cgroups::Delegation> delegation,
                                     boost::json::object capabilities)
    : io_(std::move(io)),
      settings_(std::move(settings)),
      seccomp_(std::move(seccomp)),
      spawner_(std::move(spawner)),
      delegation_(std::move(delegation)),
      capabilities_(std::move(capabilities)),
      uids_(settings_.uid_base, sandbox_uid_count(settings_)) {}

void NamespaceExecutor::set_pool(std::unique_ptr<ZygotePool> pool) {
  pool_ = std::move(pool);
  if (pool_) pool_->start();
}

boost::json::object NamespaceExecutor::pool_state() const {
  if (pool_) return pool_->describe();
  return {{"enabled", false}, {"reason", pool_off_reason_}};
}

namespace {

// A namespace sandbox: its main process is the init of its PID namespace, so its exit takes
// every other process of the sandbox along (pid_namespaces(7)); in full mode the cgroup leaf
// also kills, measures and is removed.
class NamespaceSandbox final : public SandboxProcess {
 public:
  NamespaceSandbox(std::unique_ptr<jail::Child> init, std::optional<cgroups::LeafCgroup> leaf)
      : child_(std::move(init)), leaf_(std::move(leaf)) {}

  // The sandbox's init ends it (and still accounts for every process); in full mode the leaf
  // is killed as a whole at once, its cgroup accounts for everything anyway.
  void kill() noexcept override {
    if (leaf_) {
      (void)leaf_->kill();
      return;
    }
    child_->signal(jail::kStopSignal);
  }
  void force_kill() noexcept override {
    child_->kill();
    if (leaf_) (void)leaf_->kill();
  }
  awaitable<base::sys::Result<base::sys::ExitStatus>> wait_exit() override {
    co_return co_await child_->async_wait_exit();
  }
  std::optional<cgroups::LeafStats> stats() const override {
    if (!leaf_) return std::nullopt;
    auto st = leaf_->stats();
    if (!st) return std::nullopt;
    return *st;
  }
  awaitable<void> teardown() override {
    if (!leaf_) co_return;
    // Waits (without blocking the loop) until the leaf is empty, then removes it.
    if (auto gone = co_await leaf_->async_destroy(); !gone)
      cgroups::log_warning("cgroup leaf teardown: " + gone.error().message());
  }

 private:
  std::unique_ptr<jail::Child> child_;
  std::optional<cgroups::LeafCgroup> leaf_;
};

}  // namespace

awaitable<RunOutcome> NamespaceExecutor::run(ExecuteRequest request) {
  const Isolation mode = isolation();
  if (auto gone = cancelled_before_start(request, mode)) co_return *gone;
  auto io = make_run_io(request);
  if (!io) co_return internal_error(mode, "pipes: " + io.error().message());
  jail::RunParams params;
  params.limits = request_rlimits(request, settings_);
  params.fds = io->child_fds();

  auto leaf = make_leaf(request, params);
  if (!leaf) co_return internal_error(mode, "cgroup leaf: " + leaf.error().message());
  auto started = co_await start(request, params);
  if (!started) {
    if (*leaf) co_await (*leaf)->async_destroy();
    co_return internal_error(mode, std::move(started.error()));
  }
  NamespaceSandbox sandbox(std::move(started->init), std::move(*leaf));
  const Supervised run = co_await supervise_run(sandbox, std::move(*io),
                                                std::move(started->channel), request, settings_);
  // Nothing of the sandbox is left: its uid and network namespace may serve the next one.
  started->uid.release();
  started->network.release();

  const auto failed = setup_failure_of(run);
  RunOutcome outcome = classify_run(run, request, settings_, mode,
                                    failed ? spawner_.describe(*failed) : std::string());
  if (!started->zygote.empty()) {
    outcome.start = StartPath::kWarm;
    outcome.zygote = std::move(started->zygote);
  }
  co_return outcome;
}

cgroups::Result<std::optional<cgroups::LeafCgroup>> NamespaceExecutor::make_leaf(
    const ExecuteRequest& request, jail::RunParams& params) {
  if (!delegation_) return std::nullopt;
  // The child is born inside its own leaf (CLONE_INTO_CGROUP), so no instruction of it runs
  // outside its memory, pids and cpu limits.
  cgroups::LeafLimits limits;
  limits.memory_max_bytes = request.memory_bytes;
  limits.pids_max = settings_.pids_max;
  limits.cpu_max_cores = settings_.cpu_max_cores;
  auto created = delegation_->create_leaf("run-" + std::to_string(++runs_), limits);
  if (!created) return created.error();
  params.cgroup_fd = created->dir_fd();
  // The cgroup is the memory limit here; RLIMIT_AS stays only as a backstop against absurd
  // reservations, well above it (it counts address space, not memory).
  params.limits.address_space = request.memory_bytes + (1ull << 30);
  // pids.max holds first; RLIMIT_NPROC stays as a looser second line.
  params.limits.processes = 2ull * settings_.pids_max;
  return std::optional<cgroups::LeafCgroup>(std::move(*created));
}

awaitable<NamespaceExecutor::Start> NamespaceExecutor::start(const ExecuteRequest& request,
                                                             jail::RunParams& params) {
  // Warm when a zygote has a sandbox ready for it; otherwise (no pool, none ready) cold. Both
  // give the same jail: the zygote's sandbox ran the same steps, ahead of time.
  if (pool_) {
    auto warm = co_await pool_->spawn(request.script, params.limits, params.fds, params.cgroup_fd);
    if (warm) {
      co_return Started{std::move(warm->network), std::move(warm->init), std::move(warm->channel),
                        std::move(warm->uid), std::move(warm->flavour)};
    }
    base::log("executor", "warm_start_missed",
              {{"request_id", request.request_id}, {"detail", warm.error().message()}});
  }
  UidLease uid = uids_.acquire();
  if (!uid) {
    co_return Start(boost::system::in_place_error,
                    "no free sandbox uid (more sandboxes than uids)");
  }
  params.host_uid = uid.uid();
  params.host_gid = uid.uid();
  auto spawned = spawner_.spawn(params);
  if (!spawned) {
    co_return Start(boost::system::in_place_error, "spawn: " + spawned.error().message());
  }
  co_return Started{{},
                    std::make_unique<jail::Child>(io_, spawned->pid, std::move(spawned->pidfd)),
                    std::move(spawned->channel),
                    std::move(uid),
                    {}};
}

}  // namespace pysandbox::executor
