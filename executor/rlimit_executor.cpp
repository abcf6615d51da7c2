#include "executor/rlimit_executor.hpp"

#include <signal.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <cstring>
#include <iostream>
#include <optional>

#include "executor/cancel.hpp"
#include "executor/output_capture.hpp"
#include "executor/run_io.hpp"
#include "executor/runner_protocol.hpp"

namespace pysandbox::executor {

namespace {

using boost::asio::as_tuple;
using boost::asio::awaitable;
using boost::asio::use_awaitable;
using boost::asio::posix::stream_descriptor;
using Clock = std::chrono::steady_clock;
using namespace boost::asio::experimental::awaitable_operators;

// How long a run's uid may take to be empty after kill(-1): dying processes in gVisor (ptrace
// platform) take a few ms each; a fork bomb a few hundred.
constexpr std::chrono::milliseconds kClearUidBound{5000};
constexpr std::chrono::milliseconds kClearUidPoll{5};

void log_warning(std::string_view what, std::string_view detail) {
  boost::json::object line{{"event", "warning"}, {"component", "rlimit"}, {"what", what}};
  if (!detail.empty()) line["detail"] = detail;
  std::cerr << boost::json::serialize(line) << std::endl;
}

// The run's main process, by pid. Until it is reaped its pid pins the process group id, so
// signalling the group cannot hit a recycled id; destroying it unreaped kills and reaps.
class RlimitChild {
 public:
  RlimitChild(pid_t pid, const RlimitExecutorOptions& options, uid_t uid, gid_t gid)
      : pid_(pid), options_(options), uid_(uid), gid_(gid) {}
  RlimitChild(const RlimitChild&) = delete;
  RlimitChild& operator=(const RlimitChild&) = delete;
  ~RlimitChild() {
    if (reaped_) return;
    kill();
    (void)jail::sys::wait4_blocking(pid_);
  }

  // The group (setsid made pid == pgid), the process itself (in case it had not yet called
  // setsid), and with a uid of its own every process of that uid, wherever it went.
  void kill() noexcept {
    if (reaped_) return;
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    if (options_.switch_ids) {
      if (auto r = jail::kill_all_of_uid(uid_, gid_); !r)
        log_warning("kill(-1) as the sandbox uid", r.error().message());
    }
  }

  jail::sys::Result<jail::sys::ExitStatus> reap() {
    auto st = jail::sys::wait4_nohang(pid_);
    if (st && st->exited) reaped_ = true;
    if (!st) reaped_ = st.error().value() == ECHILD;
    return st;
  }

  bool reaped() const noexcept { return reaped_; }

 private:
  pid_t pid_;
  const RlimitExecutorOptions& options_;
  uid_t uid_;
  gid_t gid_;
  bool reaped_ = false;
};

}  // namespace

RlimitExecutor::RlimitExecutor(boost::asio::any_io_executor io, Settings settings,
                               std::unique_ptr<seccomp_policies::BpfProgram> seccomp,
                               jail::RlimitSpawner spawner,
                               std::optional<jail::ScratchRoot> scratch,
                               RlimitExecutorOptions options, boost::json::object capabilities)
    : io_(io),
      settings_(std::move(settings)),
      seccomp_(std::move(seccomp)),
      spawner_(std::move(spawner)),
      scratch_(std::move(scratch)),
      options_(std::move(options)),
      reaper_(jail::ChildReaper::of(io)),
      capabilities_(std::move(capabilities)) {}

jail::RlimitRunParams RlimitExecutor::params_for(const ExecuteRequest& request) const {
  jail::RlimitRunParams p;
  p.switch_ids = options_.switch_ids;
  p.uid = options_.switch_ids ? settings_.uid_base + request.slot : ::geteuid();
  p.gid = options_.switch_ids ? settings_.uid_base + request.slot : ::getegid();
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

awaitable<bool> RlimitExecutor::clear_uid(uid_t uid, gid_t gid, std::string& detail) {
  boost::asio::steady_timer pause(io_);
  const auto deadline = Clock::now() + kClearUidBound;
  for (;;) {
    if (auto r = jail::kill_all_of_uid(uid, gid); !r) detail = "kill(-1): " + r.error().message();
    std::size_t left = 0;
    for (const auto& p : jail::processes_of_uid(uid)) {
      if (p.zombie) {
        // Reparented to us (we are pid 1 of a container, or the child subreaper): ours to reap,
        // nobody else will. Another parent's zombie cannot run or hold anything; it only counts
        // towards the uid's RLIMIT_NPROC until its parent reaps it.
        if (!p.our_child) continue;
        if (!reaper_.watching(p.pid)) {
          if (auto st = jail::sys::wait4_nohang(p.pid); st && st->exited) continue;
        }
      }
      ++left;
    }
    if (left == 0) co_return true;
    if (Clock::now() >= deadline) {
      detail += (detail.empty() ? "" : "; ") + std::to_string(left) + " process(es) of uid " +
                std::to_string(uid) + " still present";
      co_return false;
    }
    pause.expires_after(kClearUidPoll);
    co_await pause.async_wait(as_tuple(use_awaitable));
  }
}

awaitable<RunOutcome> RlimitExecutor::run(ExecuteRequest request) {
  if (request.cancel && request.cancel->cancelled()) {
    RunOutcome gone;
    gone.status = Status::kCancelled;
    gone.isolation = isolation();
    co_return gone;
  }
  const auto t_start = Clock::now();
  jail::RlimitRunParams params = params_for(request);

  // The run's private writable place: a tmpfs over /tmp in its own mount namespace, or else a
  // directory in our scratch root that the run creates for itself, as its own uid.
  std::string scratch_name;
  if (options_.private_tmp || !scratch_) {
    params.cwd = "/tmp";
  } else {
    scratch_name = jail::ScratchRoot::new_run_name();
    params.cwd = scratch_->path() + "/" + scratch_name;
    params.create_cwd = true;
    params.env = {"HOME=" + params.cwd, "TMPDIR=" + params.cwd, "MPLCONFIGDIR=" + params.cwd};
  }

  auto io = make_run_io(request);
  if (!io) co_return internal_error(Isolation::kRlimit, "pipes: " + io.error().message());
  params.fds = {io->stdin_data.get(), io->out.write.get(), io->err.write.get(), io->script.get(),
                io->result.write.get()};

  auto spawned = spawner_.spawn(params);
  if (!spawned) co_return internal_error(Isolation::kRlimit, "spawn: " + spawned.error().message());
  const pid_t pid = spawned->pid;
  RlimitChild child(pid, options_, params.uid, params.gid);

  // Only the sandbox may hold the write ends: EOF then means every process in it closed them.
  io->out.write.reset();
  io->err.write.reset();
  io->result.write.reset();
  io->script.reset();
  io->stdin_data.reset();

  stream_descriptor out_pipe(io_, io->out.read.release());
  stream_descriptor err_pipe(io_, io->err.read.release());
  stream_descriptor result_pipe(io_, io->result.read.release());
  stream_descriptor setup_pipe(io_, spawned->setup_errors.release());

  const std::size_t cap = settings_.max_output_bytes;
  BoundedBuffer out_buf(cap), err_buf(cap), result_buf(cap), setup_buf(sizeof(jail::SetupFailure));
  bool timed_out = false;
  bool output_limited = false;
  Clock::time_point t_exec = t_start, t_exit = t_start;
  jail::sys::Result<jail::sys::ExitStatus> exit_status = boost::system::error_code{};

  boost::asio::steady_timer deadline(io_, request.timeout);
  auto on_output_overflow = [&] {
    if (settings_.truncate_output) return;
    output_limited = true;
    child.kill();
  };
  // The result channel is never truncated: a cut JSON document would be useless.
  auto on_result_overflow = [&] {
    output_limited = true;
    child.kill();
  };
  auto watch_setup = [&]() -> awaitable<void> {
    co_await drain(setup_pipe, setup_buf, nullptr);
    t_exec = Clock::now();
  };
  auto watch_exit = [&]() -> awaitable<void> {
    auto exited = co_await reaper_.async_wait_exited(pid);
    t_exit = Clock::now();
    if (exited) {
      // The main process is over: whatever it left behind (children, daemons holding the pipes
      // open) dies now, while its zombie still pins the process group id.
      child.kill();
      exit_status = child.reap();
    } else {
      exit_status = exited.error();
      child.kill();
    }
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
      child.kill();
    }
  };

  bool cancelled = false;
  if (request.cancel) {
    request.cancel->on_cancel([&] {
      cancelled = true;
      child.kill();
    });
  }
  co_await (drain(out_pipe, out_buf, on_output_overflow) &&
            drain(err_pipe, err_buf, on_output_overflow) &&
            drain(result_pipe, result_buf, on_result_overflow) && watch_setup() && watch_exit() &&
            watch_deadline());
  if (request.cancel) request.cancel->clear();

  // No process of the run may outlive the response, and nothing it wrote may reach the next run
  // of this slot (same uid). The files are removed as the run's uid: a root server without
  // CAP_DAC_OVERRIDE could not, the uid itself can (it owns them; the shared dirs are sticky).
  if (options_.switch_ids) {
    std::string detail;
    if (!co_await clear_uid(params.uid, params.gid, detail))
      log_warning("clearing the uid", detail);
    // Its own directory and anything else it made in the scratch root (which it cannot list,
    // but we can).
    std::vector<std::string> names;
    if (scratch_) {
      if (auto owned = jail::entries_owned_by(scratch_->fd(), params.uid))
        names = std::move(*owned);
    }
    if (auto r = jail::remove_as_uid(params.uid, params.gid, scratch_ ? scratch_->fd() : -1, names,
                                     options_.shared_tmp_dirs);
        !r) {
      log_warning("removing the run's files", r.error().message());
    }
  } else if (!scratch_name.empty()) {
    if (auto r = jail::remove_tree_at(scratch_->fd(), scratch_name.c_str()); !r)
      log_warning("removing the scratch directory", r.error().message());
  }
  const auto t_drained = Clock::now();

  RunOutcome outcome;
  outcome.isolation = Isolation::kRlimit;
  outcome.phases.spawn_ms = ms_between(t_start, t_exec);
  outcome.phases.run_ms = ms_between(t_exec, t_exit);

  if (!setup_buf.data().empty()) {
    jail::SetupFailure failure{};
    std::memcpy(&failure, setup_buf.data().data(),
                std::min(sizeof failure, setup_buf.data().size()));
    outcome = internal_error(Isolation::kRlimit,
                             "sandbox setup failed: " + jail::RlimitSpawner::describe(failure));
    outcome.phases.spawn_ms = ms_between(t_start, t_exit);
    co_return outcome;
  }
  if (!exit_status) {
    co_return internal_error(Isolation::kRlimit,
                             "waiting for the sandbox: " + exit_status.error().message());
  }

  outcome.ran = true;
  outcome.stdout_data = sanitize_utf8(out_buf.data());
  outcome.stderr_data = sanitize_utf8(err_buf.data());
  outcome.truncated = out_buf.overflowed() || err_buf.overflowed();
  const rusage& ru = exit_status->usage;
  outcome.usage.wall_ms = ms_between(t_start, t_exit);
  outcome.usage.cpu_ms = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
                         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
  // ru_maxrss is in KiB: the largest resident set of the process or a child it reaped.
  outcome.usage.peak_memory_bytes = static_cast<std::uint64_t>(ru.ru_maxrss) * 1024;

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
  outcome.isolation = Isolation::kRlimit;
  co_return outcome;
}

}  // namespace pysandbox::executor
