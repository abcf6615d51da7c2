// What the spawner tests read back from a finished sandbox: its output, exit and setup failure.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <string>

namespace pysandbox::jail::test_support {

struct RunResult {
  std::string out;
  std::string err;
  int code = -1;
  int signal = 0;
  std::string setup_failure;
};

// Everything left in `fd` until end of file.
inline std::string read_all(int fd) {
  std::string s;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      s.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return s;
  }
}

}  // namespace pysandbox::jail::test_support
