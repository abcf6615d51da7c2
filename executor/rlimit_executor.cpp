#include "executor/rlimit_executor.hpp"

#include <signal.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>

#include "base/log.hpp"
#include "executor/outcome.hpp"
#include "executor/run_io.hpp"
#include "executor/supervise.hpp"
#include "jail/sandbox_init.hpp"
#include "jail/uid_sweep.hpp"

namespace pysandbox::executor {

namespace {

using boost::asio::as_tuple;
using boost::asio::awaitable;
using boost::asio::use_awaitable;

// How long a run's uid may take to be empty after kill(-1): dying processes in gVisor (ptrace
// platform) take a few ms each; a fork bomb a few hundred.
constexpr std::chrono::milliseconds kClearUidBound{5000};
constexpr std::chrono::milliseconds kClearUidPoll{5};

void log_warning(std::string_view what, std::string_view detail) {
  boost::json::object fields{{"what", what}};
  if (!detail.empty()) fields["detail"] = detail;
  base::log("rlimit", "warning", fields);
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
    (void)base::sys::wait4_blocking(pid_);
  }

  // The group (setsid made pid == pgid), the process itself (in case it had not yet called
  // setsid), and with a uid of its own every process of that uid, wherever it went.
  // Asks the run's init to end the run (jail/sandbox_init.hpp).
  void stop() noexcept {
    if (!reaped_) ::kill(pid_, jail::kStopSignal);
  }

  void kill() noexcept {
    if (reaped_) return;
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    if (options_.switch_ids) {
      if (auto r = jail::kill_all_of_uid(uid_, gid_); !r)
        log_warning("kill(-1) as the sandbox uid", r.error().message());
    }
  }

  base::sys::Result<base::sys::ExitStatus> reap() {
    auto st = base::sys::wait4_nohang(pid_);
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
    : settings_(std::move(settings)),
      seccomp_(std::move(seccomp)),
      spawner_(std::move(spawner)),
      scratch_(std::move(scratch)),
      options_(std::move(options)),
      reaper_(jail::ChildReaper::of(io)),
      capabilities_(std::move(capabilities)) {}

jail::RlimitRunParams RlimitExecutor::params_for(const ExecuteRequest& request,
                                                 const RunIo& io) const {
  jail::RlimitRunParams p;
  p.switch_ids = options_.switch_ids;
  p.uid = options_.switch_ids ? settings_.uid_base + request.slot : ::geteuid();
  p.gid = options_.switch_ids ? settings_.uid_base + request.slot : ::getegid();
  p.limits = request_rlimits(request, settings_);
  p.fds = io.child_fds();
  return p;
}

std::string RlimitExecutor::place_run(jail::RlimitRunParams& params) const {
  if (options_.private_tmp || !scratch_) {
    params.cwd = "/tmp";
    return {};
  }
  std::string name = jail::ScratchRoot::new_run_name();
  params.cwd = scratch_->path() + "/" + name;
  params.create_cwd = true;
  params.env = {"HOME=" + params.cwd, "TMPDIR=" + params.cwd, "MPLCONFIGDIR=" + params.cwd};
  return name;
}

void RlimitExecutor::remove_run_files(const jail::RlimitRunParams& params,
                                      const std::string& scratch_name) const {
  // The files are removed as the run's uid: a root server without CAP_DAC_OVERRIDE could not,
  // the uid itself can (it owns them; the shared dirs are sticky).
  if (options_.switch_ids) {
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
}

namespace {

// Kills every process of `uid` and waits (without blocking the loop, bounded) until /proc shows
// none, reaping those that were reparented to this process (it may be pid 1 of a container).
// Returns false if some survived the bound.
awaitable<bool> clear_uid(jail::ChildReaper& reaper, uid_t uid, gid_t gid, std::string& detail) {
  boost::asio::steady_timer pause(co_await boost::asio::this_coro::executor);
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
        if (!reaper.watching(p.pid)) {
          if (auto st = base::sys::wait4_nohang(p.pid); st && st->exited) continue;
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

// An rlimit sandbox: a process group and, with a uid of its own, every process of that uid. Its
// main process's exit does not end the others (no PID namespace of ours to rely on): they are
// killed, and the uid checked empty, before the run counts as over.
class RlimitSandbox final : public SandboxProcess {
 public:
  RlimitSandbox(jail::ChildReaper& reaper, pid_t pid, const RlimitExecutorOptions& options,
                uid_t uid, gid_t gid)
      : reaper_(reaper),
        child_(pid, options, uid, gid),
        pid_(pid),
        switch_ids_(options.switch_ids),
        uid_(uid),
        gid_(gid) {}

  // The run's init ends it and still accounts for every process; force_kill() is the old
  // hammer: the process group and every process of the uid, init included.
  void kill() noexcept override { child_.stop(); }
  void force_kill() noexcept override { child_.kill(); }

  awaitable<base::sys::Result<base::sys::ExitStatus>> wait_exit() override {
    auto exited = co_await reaper_.async_wait_exited(pid_);
    // init is over (it ended the run's other processes, as far as it could signal them):
    // whatever is left (a process of its group that is not its uid's) dies now, while init's
    // zombie still pins the process group id.
    child_.kill();
    if (!exited) co_return exited.error();
    co_return child_.reap();
  }

  awaitable<void> wait_gone() override {
    if (!switch_ids_) co_return;
    std::string detail;
    if (!co_await clear_uid(reaper_, uid_, gid_, detail)) log_warning("clearing the uid", detail);
  }

 private:
  jail::ChildReaper& reaper_;
  RlimitChild child_;
  pid_t pid_;
  bool switch_ids_;
  uid_t uid_;
  gid_t gid_;
};

}  // namespace

awaitable<RunOutcome> RlimitExecutor::run(ExecuteRequest request) {
  constexpr Isolation kMode = Isolation::kRlimit;
  if (auto gone = cancelled_before_start(request, kMode)) co_return *gone;
  auto io = make_run_io(request);
  if (!io) co_return internal_error(kMode, "pipes: " + io.error().message());
  jail::RlimitRunParams params = params_for(request, *io);
  const std::string scratch_name = place_run(params);

  auto spawned = spawner_.spawn(params);
  if (!spawned) co_return internal_error(kMode, "spawn: " + spawned.error().message());
  RlimitSandbox sandbox(reaper_, spawned->pid, options_, params.uid, params.gid);
  const Supervised run = co_await supervise_run(sandbox, std::move(*io),
                                                std::move(spawned->channel), request, settings_);

  // Nothing the run wrote may reach the next run of this slot (same uid).
  remove_run_files(params, scratch_name);
  const auto failed = setup_failure_of(run);
  co_return classify_run(run, request, settings_, kMode,
                         failed ? jail::RlimitSpawner::describe(*failed) : std::string());
}

}  // namespace pysandbox::executor
