#include "executor/run_io.hpp"

#include <string.h>

namespace pysandbox::executor {

boost::system::result<RunIo> make_run_io(const ExecuteRequest& request) {
  RunIo io;
  auto script = base::sys::make_sealed_memfd("script", request.script);
  if (!script) return script.error();
  io.script = std::move(*script);
  auto in = base::sys::make_sealed_memfd("stdin", request.stdin_data);
  if (!in) return in.error();
  io.stdin_data = std::move(*in);
  for (auto* pipe : {&io.out, &io.err, &io.result}) {
    auto p = base::sys::make_pipe();
    if (!p) return p.error();
    *pipe = std::move(*p);
  }
  return io;
}

jail::Rlimits request_rlimits(const ExecuteRequest& request, const Settings& settings) {
  jail::Rlimits limits;
  limits.address_space = request.memory_bytes;
  const auto seconds = std::chrono::ceil<std::chrono::seconds>(request.timeout).count();
  limits.cpu_seconds = static_cast<std::uint64_t>(seconds) + 1;
  limits.processes = settings.pids_max;
  limits.open_files = settings.nofile_max;
  limits.file_size = settings.fsize_max_bytes;
  return limits;
}

RunOutcome internal_error(Isolation mode, std::string detail) {
  RunOutcome out;
  out.status = Status::kInternal;
  out.isolation = mode;
  out.message = "the sandbox could not be started";
  out.internal_detail = std::move(detail);
  return out;
}

std::string signal_name(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return abbrev != nullptr ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

}  // namespace pysandbox::executor
