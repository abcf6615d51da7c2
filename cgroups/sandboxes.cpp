#include "cgroups/sandboxes.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "cgroups/cgroup_kill.hpp"
#include "cgroups/cgroupfs.hpp"

namespace pysandbox::cgroups::detail {

using base::sys::UniqueFd;

Sandboxes::Sandboxes(SandboxesConfig config, UniqueFd dir_fd)
    : config_(std::move(config)), dir_fd_(std::move(dir_fd)) {
  relative_ = config_.dir.substr(config_.mount_point.size());
  while (!relative_.empty() && relative_.front() == '/') relative_.erase(0, 1);
}

Sandboxes::~Sandboxes() {
  reaper_.retry([this](const std::string& name) {
    auto done = try_destroy(name, -1, config_.kill_timeout);
    if (!done) log_warning("leaf left behind at shutdown: " + done.error().message());
    return done.has_value();
  });
}

std::string Sandboxes::leaf_path(const std::string& name) const {
  return fs::join(config_.dir, name);
}

Result<UniqueFd> Sandboxes::create(const std::string& name,
                                   const std::vector<ControlValue>& values) {
  const std::string path = leaf_path(name);
  Result<void> made;
  if (config_.backend == Backend::kLibcgroup) {
    // libcgroup's mkdir -p accepts an existing directory, which would hand a request a leaf that
    // may still hold someone else's processes. Only this server creates entries under
    // sandboxes/, so checking first is not racy.
    if (fs::exists_at(dir_fd_.get(), name.c_str())) return errno_error(EEXIST, "mkdir", path);
    made = libcgroup_create(fs::join(relative_, name), path, values);
  } else {
    if (::mkdirat(dir_fd_.get(), name.c_str(), 0755) != 0) return errno_error(errno, "mkdir", path);
    auto leaf = fs::open_dir_at(dir_fd_.get(), config_.dir, name);
    made = leaf ? Result<void>() : Result<void>(leaf.error());
    for (std::size_t i = 0; made && i < values.size(); ++i) {
      made = fs::write_file_at(leaf->get(), path, values[i].file, values[i].value);
    }
  }
  // The fd handed out is opened after every limit is in place.
  auto leaf =
      made ? fs::open_dir_at(dir_fd_.get(), config_.dir, name) : Result<UniqueFd>(made.error());
  if (!leaf) {
    // We made this directory: take it away again (nothing can have entered it yet).
    if (auto removed = remove(name); !removed) adopt(name, removed.error());
  }
  return leaf;
}

Result<void> Sandboxes::remove_children(int leaf_fd, const std::string& leaf_path) {
  auto children = fs::list_subdirs(leaf_fd, leaf_path);
  if (!children) return children.error();
  for (const std::string& child : *children) {
    auto child_fd = fs::open_dir_at(leaf_fd, leaf_path, child);
    if (!child_fd) {
      if (child_fd.error().code() == ENOENT) continue;
      return child_fd.error();
    }
    const std::string child_path = fs::join(leaf_path, child);
    if (auto r = remove_children(child_fd->get(), child_path); !r) return r;
    if (::unlinkat(leaf_fd, child.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
      return errno_error(errno, "rmdir", child_path);
    }
  }
  return {};
}

Result<void> Sandboxes::remove(const std::string& name) {
  const std::string path = leaf_path(name);
  const auto remove_once = [&]() -> Result<void> {
    if (config_.backend == Backend::kLibcgroup) {
      return libcgroup_delete(fs::join(relative_, name), path);
    }
    if (::unlinkat(dir_fd_.get(), name.c_str(), AT_REMOVEDIR) == 0 || errno == ENOENT) return {};
    return errno_error(errno, "rmdir", path);
  };
  auto removed = remove_once();
  if (removed || removed.error().code() != EBUSY) return removed;
  // EBUSY: processes left (caller's problem) or child cgroups, which rmdir never removes.
  auto leaf = fs::open_dir_at(dir_fd_.get(), config_.dir, name);
  if (!leaf) return leaf.error().code() == ENOENT ? Result<void>() : Result<void>(leaf.error());
  auto children = fs::list_subdirs(leaf->get(), path);
  if (!children || children->empty()) return removed;
  if (auto r = remove_children(leaf->get(), path); !r) return r;
  return remove_once();
}

Result<void> Sandboxes::try_destroy(const std::string& name, int leaf_fd,
                                    std::chrono::milliseconds grace) {
  UniqueFd opened;
  if (leaf_fd < 0) {
    auto leaf = fs::open_dir_at(dir_fd_.get(), config_.dir, name);
    if (!leaf) return leaf.error().code() == ENOENT ? Result<void>() : Result<void>(leaf.error());
    opened = std::move(*leaf);
    leaf_fd = opened.get();
  }
  const std::string path = leaf_path(name);
  if (auto killed = kill_cgroup(leaf_fd, path); !killed) return killed.error();
  if (auto empty = wait_unpopulated(leaf_fd, path, grace); !empty) return empty.error();
  return remove(name);
}

bool Sandboxes::destroy_or_adopt(const std::string& name, int leaf_fd,
                                 std::chrono::milliseconds grace) {
  auto done = try_destroy(name, leaf_fd, grace);
  if (done) return true;
  adopt(name, done.error());
  return false;
}

void Sandboxes::adopt(const std::string& name, const Error& why) {
  log_warning(why.message() + "; " + leaf_path(name) + " handed to the stale-leaf reaper");
  reaper_.add(name);
}

std::size_t Sandboxes::reap() {
  return reaper_.retry([this](const std::string& name) {
    return try_destroy(name, -1, std::chrono::milliseconds(0)).has_value();
  });
}

}  // namespace pysandbox::cgroups::detail
