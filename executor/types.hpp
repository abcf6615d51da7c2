// Types shared by the HTTP layer and the executor: what a run asks for and what it produced.
#pragma once

#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "executor/request_defaults.hpp"

namespace pysandbox::executor {

class CancelSignal;

// Ordered by strength: a floor compares with <.
enum class Isolation { kRlimit = 0, kNamespaces = 1, kFull = 2 };

std::string_view to_string(Isolation mode);
std::optional<Isolation> isolation_from_string(std::string_view name);

struct ExecuteRequest {
  std::string request_id;
  std::string script;
  std::string stdin_data;
  std::chrono::milliseconds timeout{kDefaultTimeoutMs};
  std::uint64_t memory_bytes = std::uint64_t{kDefaultMemoryMb} << 20;
  // Admission slot, in [0, max_concurrency): selects the sandbox's host uid so that concurrent
  // sandboxes never share a uid.
  unsigned slot = 0;
  // Set by a caller that may give up on the run (its client went away): cancel() kills the
  // sandbox at once and the run ends with kCancelled. Null: not cancellable.
  std::shared_ptr<CancelSignal> cancel;
};

// sandbox2-style typed outcome. Every value except kOk and kInternal is the script's own fault
// or a limit; kInternal is the service's fault.
enum class Status {
  kOk,
  kSyntaxError,
  kNoMain,
  kMainNotCallable,
  kException,
  kNotJsonSerializable,
  kTimeout,
  kMemoryLimit,
  kOutputLimit,
  kKilled,
  // The caller cancelled the run (ExecuteRequest::cancel): nobody is waiting for the answer.
  kCancelled,
  kInternal,
};

// The contract's machine-readable `error_type` ("ok" for kOk).
std::string_view error_type(Status status);

struct Usage {
  double wall_ms = 0;
  double cpu_ms = 0;
  std::uint64_t peak_memory_bytes = 0;
};

struct PhaseTimings {
  double spawn_ms = 0;     // clone + namespace/mount setup until execve
  double run_ms = 0;       // execve until the sandbox's init exited
  double teardown_ms = 0;  // draining pipes, reaping, removing cgroups
};

struct RunOutcome {
  Status status = Status::kInternal;
  boost::json::value result;  // main()'s return value, when status == kOk
  std::string stdout_data;
  std::string stderr_data;
  bool truncated = false;       // stdout/stderr cut at the cap (truncate mode only)
  std::string message;          // human sentence for the client (exception text, limit hit, ...)
  std::string trace;            // Python traceback, paths inside the sandbox only
  int signal = 0;               // kKilled: the signal number
  bool ran = false;             // the script started: stdout/stderr/usage are meaningful
  std::string internal_detail;  // kInternal: step + errno, for the log only, never sent out
  Usage usage;
  PhaseTimings phases;
  Isolation isolation = Isolation::kRlimit;
  // "warm" (forked from a zygote of `zygote` flavour) or "cold" (a fresh interpreter).
  std::string start = "cold";
  std::string zygote;
};

}  // namespace pysandbox::executor
