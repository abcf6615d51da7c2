#include "executor/outcome.hpp"

#include <signal.h>
#include <sys/wait.h>

#include "executor/cancel.hpp"
#include "executor/run_io.hpp"
#include "executor/runner_protocol.hpp"

namespace pysandbox::executor {

namespace {

double cpu_ms(const rusage& ru) {
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

// How the script's process ended: as the sandbox's init saw it (its record), or, when init was
// killed before it could say (the deadline's backstop, a cgroup kill), as the server saw init.
struct Ending {
  int signal = 0;
  int code = 0;
};

Ending ending_of(const Supervised& run) {
  if (run.report.exited) {
    const int status = run.report.exited->status;
    if (WIFSIGNALED(status)) return {WTERMSIG(status), 0};
    return {0, WEXITSTATUS(status)};
  }
  return {run.exit->signal, run.exit->code};
}

Usage usage_of(const Supervised& run) {
  Usage u;
  u.wall_ms = ms_between(run.started, run.exited);
  if (run.report.exited) {
    // Every process of the sandbox, reaped by its init.
    const auto& r = *run.report.exited;
    u.cpu_ms = static_cast<double>(r.user_usec + r.system_usec) / 1e3;
    u.peak_memory_bytes = static_cast<std::uint64_t>(r.max_rss_kib) * 1024;
  } else {
    const rusage& ru = run.exit->usage;
    u.cpu_ms = cpu_ms(ru);
    // ru_maxrss is in KiB: the largest resident set of the process or a descendant it reaped.
    u.peak_memory_bytes = static_cast<std::uint64_t>(ru.ru_maxrss) * 1024;
  }
  if (run.cgroup) {
    // The leaf saw every process of the sandbox, all the time.
    u.cpu_ms = static_cast<double>(run.cgroup->cpu_usage_usec) / 1e3;
    u.peak_memory_bytes = run.cgroup->memory_peak_bytes;
  }
  return u;
}

}  // namespace

RunOutcome classify(const Supervised& run, const ClassifyInput& in) {
  if (!in.setup_failure.empty()) {
    RunOutcome o = internal_error(Isolation::kRlimit, "sandbox setup failed: " + in.setup_failure);
    o.phases.spawn_ms = ms_between(run.started, run.exited);
    return o;
  }
  if (!run.exit) {
    return internal_error(Isolation::kRlimit,
                          "waiting for the sandbox: " + run.exit.error().message());
  }

  RunOutcome o;
  o.ran = true;
  o.phases.spawn_ms = ms_between(run.started, run.executing);
  o.phases.run_ms = ms_between(run.executing, run.exited);
  o.phases.teardown_ms = ms_between(run.exited, run.done);
  o.stdout_data = sanitize_utf8(run.out.data());
  o.stderr_data = sanitize_utf8(run.err.data());
  o.truncated = run.out.overflowed() || run.err.overflowed();
  o.usage = usage_of(run);

  const Ending ending = ending_of(run);
  const int sig = ending.signal;
  const std::string cap = std::to_string(in.max_output_bytes);
  if (run.cancelled) {
    o.status = Status::kCancelled;
    o.message = "the run was cancelled by its caller";
    return o;
  }
  if (run.timed_out || sig == SIGXCPU) {
    o.status = Status::kTimeout;
    o.message = "the script did not finish within " + std::to_string(in.timeout.count()) + " ms";
    return o;
  }
  if (run.output_limited) {
    o.status = Status::kOutputLimit;
    o.message = run.result.overflowed()
                    ? "main()'s result is larger than " + cap + " bytes"
                    : "the script wrote more than " + cap + " bytes to stdout or stderr";
    return o;
  }
  const DecodedChannel channel = decode_runner_result(run.result.data(), o);
  if (channel.state == ChannelState::kDecoded) return o;  // ok, or the script's own error
  if (run.cgroup && run.cgroup->oom_kill > 0) {
    // memory.oom.group=1: the kernel's OOM killer took the whole leaf.
    o.status = Status::kMemoryLimit;
    o.message =
        "the script exceeded its memory limit of " + std::to_string(in.memory_bytes >> 20) + " MiB";
    return o;
  }
  if (sig != 0) {
    o.status = Status::kKilled;
    o.signal = sig;
    o.message = "the script was killed by " + signal_name(sig);
    return o;
  }
  if (channel.state == ChannelState::kInvalid) {
    o.status = Status::kNotJsonSerializable;
    o.message = "main()'s result could not be read back: " + channel.why;
    return o;
  }
  o.status = Status::kException;
  o.message = "the interpreter exited with status " + std::to_string(ending.code) +
              " before main() returned (see stderr)";
  return o;
}

std::optional<jail::SetupFailure> setup_failure_of(const Supervised& run) {
  const auto& f = run.report.setup_failed;
  if (!f) return std::nullopt;
  return jail::SetupFailure{f->step, f->index, f->err};
}

RunOutcome classify_run(const Supervised& run, const ExecuteRequest& request,
                        const Settings& settings, Isolation mode, std::string setup_failure) {
  ClassifyInput input;
  input.setup_failure = std::move(setup_failure);
  input.timeout = request.timeout;
  input.memory_bytes = request.memory_bytes;
  input.max_output_bytes = settings.max_output_bytes;
  RunOutcome outcome = classify(run, input);
  outcome.isolation = mode;
  return outcome;
}

std::optional<RunOutcome> cancelled_before_start(const ExecuteRequest& request, Isolation mode) {
  if (!request.cancel || !request.cancel->cancelled()) return std::nullopt;
  RunOutcome gone;
  gone.status = Status::kCancelled;
  gone.isolation = mode;
  return gone;
}

}  // namespace pysandbox::executor
