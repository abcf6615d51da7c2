#include "tests/e2e/sandbox_uids.hpp"

#include <dirent.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include "tests/e2e/http_client.hpp"

namespace pysandbox::e2e {

namespace {

// (pid, real uid) of every host process whose real uid lies in [first, first + count).
std::vector<std::pair<pid_t, uid_t>> with_uids(uid_t first, unsigned count) {
  std::vector<std::pair<pid_t, uid_t>> out;
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
      if (uid >= first && uid < first + count)
        out.emplace_back(static_cast<pid_t>(pid), static_cast<uid_t>(uid));
      break;
    }
  }
  ::closedir(proc);
  return out;
}

}  // namespace

std::vector<pid_t> processes_with_uids(uid_t first, unsigned count) {
  std::vector<pid_t> out;
  for (const auto& [pid, uid] : with_uids(first, count)) out.push_back(pid);
  return out;
}

std::vector<pid_t> leftover_sandbox_processes(unsigned short port) {
  const auto health = http(port, {.target = "/healthz"}).json();
  if (!health.is_object()) return {-1};  // no answer: nothing can be claimed
  const auto& iso = health.at("isolation").as_object();
  const auto& uids = iso.at("uids").as_object();
  std::set<uid_t> ahead;
  const auto& pool = health.at("pool").as_object();
  if (const auto* zygotes = pool.if_contains("zygotes")) {
    for (const auto& z : zygotes->as_array()) {
      const auto& zo = z.as_object();
      for (const char* key : {"sandboxes_ahead_uids", "sandboxes_making_uids"}) {
        if (const auto* uids_of = zo.if_contains(key)) {
          for (const auto& u : uids_of->as_array())
            ahead.insert(static_cast<uid_t>(u.to_number<std::int64_t>()));
        }
      }
    }
  }
  std::vector<pid_t> out;
  for (const auto& [pid, uid] :
       with_uids(static_cast<uid_t>(uids.at("first").to_number<std::int64_t>()),
                 static_cast<unsigned>(uids.at("count").to_number<std::int64_t>()))) {
    if (ahead.contains(uid)) continue;
    // A zombie handed to the host's init is dead and holds nothing: what an earlier server of
    // this range, killed at the end of its test, left for init to reap on its own time.
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    bool zombie = false, orphaned = false;
    while (std::getline(status, line)) {
      if (line.rfind("State:", 0) == 0) zombie = line.find('Z') != std::string::npos;
      if (line.rfind("PPid:", 0) == 0) orphaned = std::stol(line.substr(5)) == 1;
    }
    if (zombie && orphaned) continue;
    out.push_back(pid);
  }
  return out;
}

std::string describe_processes(const std::vector<pid_t>& pids) {
  std::string out;
  for (const pid_t pid : pids) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    out += std::to_string(pid) + ":";
    while (std::getline(status, line)) {
      for (const char* key : {"Name:", "State:", "PPid:", "Uid:"}) {
        if (line.rfind(key, 0) == 0) out += " " + line;
      }
    }
    out += "\n";
  }
  return out;
}

}  // namespace pysandbox::e2e
