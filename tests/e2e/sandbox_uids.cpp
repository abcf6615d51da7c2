#include "tests/e2e/sandbox_uids.hpp"

#include <dirent.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace pysandbox::e2e {

std::vector<pid_t> processes_with_uids(uid_t first, unsigned count) {
  std::vector<pid_t> out;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return out;
  while (dirent* e = ::readdir(proc)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    std::ifstream status(std::string("/proc/") + e->d_name + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("Uid:", 0) != 0) continue;
      std::istringstream fields(line.substr(4));
      unsigned long uid = 0;
      fields >> uid;
      if (uid >= first && uid < first + count) out.push_back(static_cast<pid_t>(pid));
      break;
    }
  }
  ::closedir(proc);
  return out;
}

}  // namespace pysandbox::e2e
