#include "zygote/huge_pages.hpp"

#include <sys/mman.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

namespace pysandbox::zygote {

CollapseStats collapse_anonymous_memory() noexcept {
  CollapseStats stats;
  std::FILE* maps = std::fopen("/proc/self/maps", "re");
  if (maps == nullptr) {
    stats.last_error = errno;
    return stats;
  }
  constexpr std::uintptr_t kHuge = 2u << 20;
  char line[512];
  while (std::fgets(line, sizeof line, maps) != nullptr) {
    unsigned long start = 0, end = 0, offset = 0, inode = 0;
    char perms[5] = {};
    char dev[16] = {};
    int path_at = 0;
    if (std::sscanf(line, "%lx-%lx %4s %lx %15s %lu %n", &start, &end, perms, &offset, dev, &inode,
                    &path_at) < 6) {
      continue;
    }
    // Anonymous (no file, or the brk heap), private and writable: the interpreter's objects.
    const char* path = line + path_at;
    const bool anonymous =
        inode == 0 && (*path == '\n' || *path == '\0' || std::strncmp(path, "[heap]", 6) == 0);
    if (!anonymous || std::strcmp(perms, "rw-p") != 0) continue;
    ++stats.regions;
    const std::uintptr_t first = (start + kHuge - 1) & ~(kHuge - 1);
    const std::uintptr_t last = end & ~(kHuge - 1);
    if (last <= first) continue;
    void* at = reinterpret_cast<void*>(first);
    const std::size_t len = last - first;
    if (::madvise(at, len, MADV_HUGEPAGE) != 0 || ::madvise(at, len, MADV_COLLAPSE) != 0) {
      stats.last_error = errno;
      continue;
    }
    stats.collapsed_bytes += len;
  }
  std::fclose(maps);
  return stats;
}

}  // namespace pysandbox::zygote
