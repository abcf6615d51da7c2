#include "executor/sandbox_executor.hpp"

#include <signal.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstring>
#include <optional>

#include "cgroups/error.hpp"
#include "executor/cancel.hpp"
#include "executor/output_capture.hpp"
#include "executor/run_io.hpp"
#include "executor/runner_protocol.hpp"
#include "jail/child.hpp"

namespace pysandbox::executor {

namespace {

using boost::asio::as_tuple;
using boost::asio::awaitable;
using boost::asio::use_awaitable;
using boost::asio::posix::stream_descriptor;
using Clock = std::chrono::steady_clock;
using namespace boost::asio::experimental::awaitable_operators;

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
      capabilities_(std::move(capabilities)) {}

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
  p.host_uid = settings_.uid_base + request.slot;
  p.host_gid = settings_.uid_base + request.slot;
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

awaitable<RunOutcome> SandboxExecutor::run(ExecuteRequest request) {
  if (request.cancel && request.cancel->cancelled()) {
    RunOutcome gone;
    gone.status = Status::kCancelled;
    gone.isolation = isolation();
    co_return gone;
  }
  const auto t_start = Clock::now();
  const Isolation mode = isolation();

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

  // Warm start when a zygote can fork the child; otherwise (no pool, no zygote up) cold. Both
  // give the same jail: the zygote's child runs the same steps, then the runner in-process.
  boost::system::result<jail::Spawned> spawned = boost::system::error_code{};
  std::string zygote_flavour;
  if (pool_) {
    if (auto setup = jail::sys::make_pipe()) {
      auto warm = co_await pool_->spawn(request.script, params, setup->write.get());
      if (warm) {
        jail::Spawned s;
        s.pid = warm->pid;
        s.pidfd = std::move(warm->pidfd);
        s.setup_errors = std::move(setup->read);
        spawned = std::move(s);
        zygote_flavour = std::move(warm->flavour);
      }
      // Our copy of the write end closes here: EOF then comes from the child alone.
    }
  }
  if (zygote_flavour.empty()) spawned = spawner_.spawn(params);
  if (!spawned) {
    if (leaf) co_await leaf->async_destroy();
    co_return internal_error(mode, "spawn: " + spawned.error().message());
  }

  // Only the sandbox may hold the write ends: EOF then means every process in it is gone.
  io->out.write.reset();
  io->err.write.reset();
  io->result.write.reset();
  io->script.reset();
  io->stdin_data.reset();

  jail::Child child(io_, spawned->pid, std::move(spawned->pidfd));
  stream_descriptor out_pipe(io_, io->out.read.release());
  stream_descriptor err_pipe(io_, io->err.read.release());
  stream_descriptor result_pipe(io_, io->result.read.release());
  stream_descriptor setup_pipe(io_, spawned->setup_errors.release());

  const std::size_t cap = settings_.max_output_bytes;
  BoundedBuffer out_buf(cap), err_buf(cap), result_buf(cap), setup_buf(sizeof(jail::SetupFailure));
  bool timed_out = false;
  bool output_limited = false;
  Clock::time_point t_exec = t_start, t_exit = t_start;
  boost::system::result<jail::sys::ExitStatus> exit_status = boost::system::error_code{};

  boost::asio::steady_timer deadline(io_, request.timeout);
  // Killing the PID namespace's init takes every process of the namespace with it; cgroup.kill
  // also covers the leaf as a whole.
  auto kill_sandbox = [&] {
    child.kill();
    if (leaf) (void)leaf->kill();
  };
  auto on_output_overflow = [&] {
    if (settings_.truncate_output) return;
    output_limited = true;
    kill_sandbox();
  };
  auto watch_setup = [&]() -> awaitable<void> {
    co_await drain(setup_pipe, setup_buf, nullptr);
    t_exec = Clock::now();
  };
  auto watch_exit = [&]() -> awaitable<void> {
    exit_status = co_await child.async_wait_exit();
    t_exit = Clock::now();
    deadline.cancel();
  };
  auto watch_deadline = [&]() -> awaitable<void> {
    // The operands below start in order: when the child was already gone by the time
    // watch_exit looked (a warm child can finish before the server starts watching), its
    // deadline.cancel() found no wait to cancel, and this wait would last the whole timeout.
    if (child.reaped()) co_return;
    auto [ec] = co_await deadline.async_wait(as_tuple(use_awaitable));
    if (!ec && !child.reaped()) {
      timed_out = true;
      kill_sandbox();
    }
  };
  // The result channel is never truncated: a cut JSON document would be useless.
  auto on_result_overflow = [&] {
    output_limited = true;
    kill_sandbox();
  };

  bool cancelled = false;
  if (request.cancel) {
    request.cancel->on_cancel([&] {
      cancelled = true;
      kill_sandbox();
    });
  }
  co_await (drain(out_pipe, out_buf, on_output_overflow) &&
            drain(err_pipe, err_buf, on_output_overflow) &&
            drain(result_pipe, result_buf, on_result_overflow) && watch_setup() && watch_exit() &&
            watch_deadline());
  if (request.cancel) request.cancel->clear();

  std::optional<cgroups::LeafStats> cg;
  if (leaf) {
    if (auto st = leaf->stats()) cg = *st;
    // Waits (without blocking the loop) until the leaf is empty, then removes it.
    if (auto gone = co_await leaf->async_destroy(); !gone) {
      cgroups::log_warning("cgroup leaf teardown: " + gone.error().message());
    }
  }
  const auto t_drained = Clock::now();

  RunOutcome outcome;
  outcome.isolation = mode;
  outcome.phases.spawn_ms = ms_between(t_start, t_exec);
  outcome.phases.run_ms = ms_between(t_exec, t_exit);

  if (!setup_buf.data().empty()) {
    jail::SetupFailure failure{};
    std::memcpy(&failure, setup_buf.data().data(),
                std::min(sizeof failure, setup_buf.data().size()));
    outcome = internal_error(mode, "sandbox setup failed: " + spawner_.describe(failure));
    outcome.phases.spawn_ms = ms_between(t_start, t_exit);
    co_return outcome;
  }
  if (!exit_status) {
    co_return internal_error(mode, "waiting for the sandbox: " + exit_status.error().message());
  }

  outcome.ran = true;
  outcome.stdout_data = sanitize_utf8(out_buf.data());
  outcome.stderr_data = sanitize_utf8(err_buf.data());
  outcome.truncated = out_buf.overflowed() || err_buf.overflowed();
  const rusage& ru = exit_status->usage;
  outcome.usage.wall_ms = ms_between(t_start, t_exit);
  outcome.usage.cpu_ms = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
                         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
  // ru_maxrss is in KiB: the largest resident set of the init process or a reaped descendant.
  outcome.usage.peak_memory_bytes = static_cast<std::uint64_t>(ru.ru_maxrss) * 1024;
  if (cg) {
    // The leaf saw every process of the sandbox, all the time.
    outcome.usage.cpu_ms = static_cast<double>(cg->cpu_usage_usec) / 1e3;
    outcome.usage.peak_memory_bytes = cg->memory_peak_bytes;
  }
  const bool oom_killed = cg && cg->oom_kill > 0;

  const int sig = exit_status->signal;
  if (cancelled) {
    outcome.status = Status::kCancelled;
    outcome.message = "cancelled: the client went away";
  } else if (timed_out || sig == SIGXCPU) {
    outcome.status = Status::kTimeout;
    outcome.message =
        "the script did not finish within " + std::to_string(request.timeout.count()) + " ms";
  } else if (output_limited) {
    outcome.status = Status::kOutputLimit;
    outcome.message =
        result_buf.overflowed()
            ? "main()'s result is larger than " + std::to_string(cap) + " bytes"
            : "the script wrote more than " + std::to_string(cap) + " bytes to stdout or stderr";
  } else if (decode_runner_result(result_buf.data(), outcome)) {
    // The runner reported: ok or the script's own error, already in outcome.
  } else if (oom_killed) {
    // memory.oom.group=1: the kernel's OOM killer took the whole leaf.
    outcome.status = Status::kMemoryLimit;
    outcome.message = "the script exceeded its memory limit of " +
                      std::to_string(request.memory_bytes >> 20) + " MiB";
  } else if (sig != 0) {
    outcome.status = Status::kKilled;
    outcome.signal = sig;
    outcome.message = "the script was killed by " + signal_name(sig);
  } else {
    outcome.status = Status::kException;
    outcome.message = "the interpreter exited with status " + std::to_string(exit_status->code) +
                      " before main() returned (see stderr)";
  }
  outcome.phases.teardown_ms = ms_between(t_exit, t_drained);
  outcome.isolation = mode;
  if (!zygote_flavour.empty()) {
    outcome.start = "warm";
    outcome.zygote = zygote_flavour;
  }
  co_return outcome;
}

}  // namespace pysandbox::executor
