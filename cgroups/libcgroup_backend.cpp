#include "cgroups/libcgroup_backend.hpp"

#include <libcgroup.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string_view>

#include "base/log.hpp"

namespace pysandbox::cgroups::detail {

namespace {

struct CgroupDeleter {
  void operator()(cgroup* group) const noexcept { cgroup_free(&group); }
};
using CgroupPtr = std::unique_ptr<cgroup, CgroupDeleter>;

// libcgroup's messages, as log lines: {"event": "libcgroup", "component": "cgroups", "level",
// "message"} (a message longer than the buffer is cut).
void log_to_stderr(void*, int level, const char* format, va_list args) {
  std::array<char, 1024> text{};
  const int n = std::vsnprintf(text.data(), text.size(), format, args);
  if (n < 0) return;
  std::string_view message(text.data(), std::min(static_cast<std::size_t>(n), text.size() - 1));
  while (message.ends_with('\n')) message.remove_suffix(1);
  base::log("cgroups", "libcgroup", {{"level", level}, {"message", message}});
}

// cgroup_strerror() in 2.0.2 indexes its message table with code - 50000, but the enum skips
// 50022 (ECGEOF = 50023): from there on the text is off by one, and ECGNONEMPTY (50030) reads
// past the end of the table (a crash, seen in vm-run). Only trust it below the gap.
std::string describe_code(int code) {
  switch (code) {
    case ECGEOF:
      return "end of iteration";
    case ECGCONFIGPARSEFAIL:
      return "failed to parse the configuration";
    case ECGROUPUNSUPP:
      return "not supported by this kernel";
    case ECGCANTSETVALUE:
      return "a value could not be set";
    case ECGNONEMPTY:
      return "the cgroup is not empty";
    default:
      break;
  }
  if (code >= ECGROUPNOTCOMPILED && code <= ECGMOUNTFAIL) return cgroup_strerror(code);
  return "libcgroup error";
}

// libcgroup's own code plus, for ECGOTHER, the errno it recorded.
Error libcgroup_error(int code, std::string_view op, std::string_view what) {
  const int err = code == ECGOTHER ? cgroup_get_last_errno() : 0;
  std::string message = "libcgroup " + std::string(op) + " " + std::string(what) + ": " +
                        describe_code(code) + " (" + std::to_string(code) + ")";
  if (err != 0) message.append(": ").append(std::strerror(err));
  return Error(err != 0 ? err : EIO, std::move(message));
}

Result<CgroupPtr> new_cgroup(const std::string& relative, const std::string& path) {
  CgroupPtr group(cgroup_new_cgroup(relative.c_str()));
  if (!group) return Error(ENOMEM, "libcgroup cgroup_new_cgroup " + path + ": out of memory");
  return group;
}

}  // namespace

Result<void> libcgroup_init() {
  static std::once_flag once;
  static int status = 0;
  std::call_once(once, [] {
    // Before cgroup_init: otherwise it installs the default logger, which prints to stdout.
    cgroup_set_logger(&log_to_stderr, -1, nullptr);
    status = cgroup_init();
  });
  if (status != 0) return libcgroup_error(status, "cgroup_init", "");
  return {};
}

Result<std::string> libcgroup_mount_point(const char* controller) {
  char* mount_point = nullptr;
  const int ret = cgroup_get_subsys_mount_point(controller, &mount_point);
  if (ret != 0) return libcgroup_error(ret, "cgroup_get_subsys_mount_point", controller);
  std::string out(mount_point);
  std::free(mount_point);
  return out;
}

Result<void> libcgroup_create(const std::string& relative, const std::string& path,
                              const std::vector<ControlValue>& values) {
  if (values.empty()) return Error(EINVAL, "libcgroup create " + path + ": no values");
  {
    auto group = new_cgroup(relative, path);
    if (!group) return group.error();
    // One controller is enough to locate the v2 mount and mkdir the leaf. Each controller added
    // repeats cgroup_create_cgroup's work: mkdir -p from "/" and a "+<controller>" write into
    // every ancestor's cgroup.subtree_control, each step re-reading /proc/mounts
    // (cg_test_mounted_fs). That re-reading is most of libcgroup's cost here (strace in vm-run:
    // ~10 /proc/mounts reads per leaf); the values below do not need the ancestor writes.
    if (cgroup_add_controller(group->get(), values.front().controller) == nullptr) {
      return Error(EINVAL,
                   "libcgroup cgroup_add_controller " + path + ": " + values.front().controller);
    }
    // ignore_ownership = 1: keep root ownership, no chown/chmod walk over the new directory.
    if (const int ret = cgroup_create_cgroup(group->get(), 1); ret != 0) {
      return libcgroup_error(ret, "cgroup_create_cgroup", path);
    }
  }
  for (const ControlValue& v : values) {
    auto group = new_cgroup(relative, path);
    if (!group) return group.error();
    cgroup_controller* controller = cgroup_add_controller(group->get(), v.controller);
    const std::string what = path + "/" + v.file + "=" + v.value;
    if (controller == nullptr) {
      return Error(EINVAL, "libcgroup cgroup_add_controller " + what + ": " + v.controller);
    }
    if (const int ret = cgroup_add_value_string(controller, v.file, v.value.c_str()); ret != 0) {
      return libcgroup_error(ret, "cgroup_add_value_string", what);
    }
    if (const int ret = cgroup_modify_cgroup(group->get()); ret != 0) {
      return libcgroup_error(ret, "cgroup_modify_cgroup", what);
    }
  }
  return {};
}

Result<void> libcgroup_delete(const std::string& relative, const std::string& path) {
  auto group = new_cgroup(relative, path);
  if (!group) return group.error();
  // One controller: libcgroup rmdirs once per controller, and all share the one v2 directory.
  if (cgroup_add_controller(group->get(), "memory") == nullptr) {
    return Error(EINVAL, "libcgroup cgroup_add_controller " + path + ": memory");
  }
  const int ret = cgroup_delete_cgroup_ext(group->get(), CGFLAG_DELETE_EMPTY_ONLY);
  // libcgroup 2.0.2 maps rmdir's EBUSY to ECGNONEMPTY and then, when that is the only error,
  // returns 0 (cgroup_delete_cgroup_ext only keeps ECGNONEMPTY when another error replaced it):
  // a busy cgroup "deletes" successfully. Check that the directory is really gone.
  if (ret == ECGNONEMPTY || (ret == 0 && ::access(path.c_str(), F_OK) == 0)) {
    return Error(EBUSY, "libcgroup cgroup_delete_cgroup_ext " + path + ": " +
                            describe_code(ECGNONEMPTY) + ": " + std::strerror(EBUSY));
  }
  if (ret == 0) return {};
  return libcgroup_error(ret, "cgroup_delete_cgroup_ext", path);
}

}  // namespace pysandbox::cgroups::detail
