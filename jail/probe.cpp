#include "jail/probe.hpp"

#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pysandbox::jail {

ProbeResult probe_spawn(const Spawner& spawner, RunParams params) {
  auto spawned = spawner.spawn(params);
  if (!spawned) return {false, "clone3: " + spawned.error().message()};

  SetupFailure failure{};
  std::size_t got = 0;
  for (;;) {
    ssize_t n = ::read(spawned->setup_errors.get(), reinterpret_cast<char*>(&failure) + got,
                       sizeof failure - got);
    if (n > 0) {
      got += static_cast<std::size_t>(n);
      if (got == sizeof failure) break;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  siginfo_t info{};
  while (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(spawned->pidfd.get()), &info,
                  WEXITED) != 0) {
    if (errno != EINTR) return {false, std::string("waitid: ") + std::strerror(errno)};
  }
  if (got == sizeof failure) return {false, spawner.describe(failure)};
  if (info.si_code != CLD_EXITED) {
    return {false, "probe process killed by signal " + std::to_string(info.si_status)};
  }
  if (info.si_status != 0) {
    return {false, "probe process exited with status " + std::to_string(info.si_status)};
  }
  return {true, {}};
}

}  // namespace pysandbox::jail
