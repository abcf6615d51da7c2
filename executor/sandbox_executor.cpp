#include "executor/sandbox_executor.hpp"

#include <signal.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstring>
#include <optional>

#include "base/log.hpp"
#include "cgroups/error.hpp"
#include "executor/cancel.hpp"
#include "executor/outcome.hpp"
#include "executor/run_io.hpp"
#include "executor/supervise.hpp"
#include "jail/child.hpp"

namespace pysandbox::executor {

namespace {

using boost::asio::awaitable;

}  // namespace

SandboxExecutor::SandboxExecutor(boost::asio::any_io_executor io, Settings settings,
                                 std::unique_ptr<seccomp_policies::BpfProgram> seccomp,
                                 jail::Spawner spawner,
                                 std::optional<cgroups::Delegation> delegation,
                                 boost::json::object capabilities)
    : io_(std::move(io)),
      settings_(std::move(settings)),
      seccomp_(std::move(seccomp)),
      spawner_(std::move(spawner)),
      delegation_(std::move(delegation)),
      capabilities_(std::move(capabilities)),
      uids_(settings_.uid_base, sandbox_uid_count(settings_)) {}

void SandboxExecutor::set_pool(std::unique_ptr<ZygotePool> pool) {
  pool_ = std::move(pool);
  if (pool_) pool_->start();
}

boost::json::object SandboxExecutor::pool_state() const {
  if (pool_) return pool_->describe();
  return {{"enabled", false}, {"reason", pool_off_reason_}};
}

jail::RunParams SandboxExecutor::params_for(const ExecuteRequest& request) const {
  jail::RunParams p;
  // RLIMIT_AS is the memory limit of this mode: it counts reservations, so it is strict, but it
  // is the only per-process bound without cgroups.
  p.limits.address_space = request.memory_bytes;
  const auto seconds = std::chrono::ceil<std::chrono::seconds>(request.timeout).count();
  p.limits.cpu_seconds = static_cast<std::uint64_t>(seconds) + 1;
  p.limits.processes = settings_.pids_max;
  p.limits.open_files = settings_.nofile_max;
  p.limits.file_size = settings_.fsize_max_bytes;
  return p;
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

awaitable<RunOutcome> SandboxExecutor::run(ExecuteRequest request) {
  const Isolation mode = isolation();
  if (request.cancel && request.cancel->cancelled()) {
    RunOutcome gone;
    gone.status = Status::kCancelled;
    gone.isolation = mode;
    co_return gone;
  }

  auto io = make_run_io(request);
  if (!io) co_return internal_error(mode, "pipes: " + io.error().message());

  jail::RunParams params = params_for(request);
  params.fds = {io->stdin_data.get(), io->out.write.get(), io->err.write.get(), io->script.get(),
                io->result.write.get()};

  // full mode: the child is born inside its own leaf (CLONE_INTO_CGROUP), so no instruction of
  // it runs outside its memory, pids and cpu limits.
  std::optional<cgroups::LeafCgroup> leaf;
  if (delegation_) {
    cgroups::LeafLimits limits;
    limits.memory_max_bytes = request.memory_bytes;
    limits.pids_max = settings_.pids_max;
    limits.cpu_max_cores = settings_.cpu_max_cores;
    auto created = delegation_->create_leaf("run-" + std::to_string(++runs_), limits);
    if (!created) co_return internal_error(mode, "cgroup leaf: " + created.error().message());
    leaf.emplace(std::move(*created));
    params.cgroup_fd = leaf->dir_fd();
    // The cgroup is the memory limit here; RLIMIT_AS stays only as a backstop against absurd
    // reservations, well above it (it counts address space, not memory).
    params.limits.address_space = request.memory_bytes + (1ull << 30);
    // pids.max holds first; RLIMIT_NPROC stays as a looser second line.
    params.limits.processes = 2ull * settings_.pids_max;
  }

  // Warm start when a zygote has a sandbox ready for it; otherwise (no pool, none ready) cold.
  // Both give the same jail: the zygote's sandbox ran the same steps, ahead of time.
  std::unique_ptr<jail::Child> init;
  base::sys::UniqueFd channel;
  UidLease uid;
  std::string zygote_flavour;
  if (pool_) {
    auto warm = co_await pool_->spawn(request.script, params.limits, params.fds, params.cgroup_fd);
    if (!warm) {
      base::log("executor", "warm_start_missed",
                {{"request_id", request.request_id}, {"detail", warm.error().message()}});
    }
    if (warm) {
      init = std::move(warm->init);
      channel = std::move(warm->channel);
      uid = std::move(warm->uid);
      zygote_flavour = std::move(warm->flavour);
    }
  }
  if (!init) {
    uid = uids_.acquire();
    if (!uid) {
      if (leaf) co_await leaf->async_destroy();
      co_return internal_error(mode, "no free sandbox uid (more sandboxes than uids)");
    }
    params.host_uid = uid.uid();
    params.host_gid = uid.uid();
    auto spawned = spawner_.spawn(params);
    if (!spawned) {
      if (leaf) co_await leaf->async_destroy();
      co_return internal_error(mode, "spawn: " + spawned.error().message());
    }
    init = std::make_unique<jail::Child>(io_, spawned->pid, std::move(spawned->pidfd));
    channel = std::move(spawned->channel);
  }

  // Only the sandbox may hold the write ends: EOF then means every process in it is gone.
  RunStreams streams{std::move(io->out.read), std::move(io->err.read), std::move(io->result.read),
                     std::move(channel)};
  io.value() = RunIo{};
  NamespaceSandbox sandbox(std::move(init), std::move(leaf));

  SuperviseLimits limits;
  limits.timeout = request.timeout;
  limits.max_output_bytes = settings_.max_output_bytes;
  limits.truncate_output = settings_.truncate_output;
  const Supervised run =
      co_await supervise(sandbox, std::move(streams), limits, request.cancel.get());

  uid.release();  // nothing of the sandbox is left
  ClassifyInput input;
  if (const auto& f = run.report.setup_failed)
    input.setup_failure = spawner_.describe(jail::SetupFailure{f->step, f->index, f->err});
  input.timeout = request.timeout;
  input.memory_bytes = request.memory_bytes;
  input.max_output_bytes = settings_.max_output_bytes;
  RunOutcome outcome = classify(run, input);
  outcome.isolation = mode;
  if (!zygote_flavour.empty()) {
    outcome.start = "warm";
    outcome.zygote = zygote_flavour;
  }
  co_return outcome;
}

}  // namespace pysandbox::executor
