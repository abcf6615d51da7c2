#include "probe/rlimits.hpp"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "probe/child.hpp"

namespace pysandbox::probe {

std::vector<Facility> rlimits() {
  struct Limit {
    const char* name;
    int resource;
    rlim_t value;
  };
  static constexpr Limit kLimits[] = {
      {"AS", RLIMIT_AS, 512ull << 20},
      {"CPU", RLIMIT_CPU, 10},
      {"NPROC", RLIMIT_NPROC, 64},
      {"NOFILE", RLIMIT_NOFILE, 256},
      {"FSIZE", RLIMIT_FSIZE, 64ull << 20},
      {"STACK", RLIMIT_STACK, 8ull << 20},
      {"CORE", RLIMIT_CORE, 0},
      {"MEMLOCK", RLIMIT_MEMLOCK, 0},
      {"MSGQUEUE", RLIMIT_MSGQUEUE, 0},
  };
  constexpr int kCount = static_cast<int>(sizeof kLimits / sizeof kLimits[0]);
  const ChildRun run = run_in_child([](int fd) {
    for (int i = 0; i < kCount; ++i) {
      const rlimit rl{kLimits[i].value, kLimits[i].value};
      report(fd, i, ::syscall(SYS_setrlimit, kLimits[i].resource, &rl) == 0 ? 0 : errno);
    }
  });
  std::vector<Facility> out;
  for (const Record& r : run.records) {
    if (r.step < 0 || r.step >= kCount) continue;
    std::string name = std::string("rlimit_") + kLimits[r.step].name;
    out.push_back(r.err == 0 ? Facility{std::move(name), true, 0, ""}
                             : Facility{std::move(name), false, r.err,
                                        std::string("setrlimit: ") + std::strerror(r.err)});
  }
  return out;
}

}  // namespace pysandbox::probe
