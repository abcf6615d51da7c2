#include "jail/scratch_dir.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <system_error>

namespace pysandbox::jail {

namespace {

constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
// Enough for a few entries per getdents64 call; a stack buffer (the raw functions may run in a
// forked child, where allocating is not allowed).
constexpr std::size_t kListBytes = 4096;

bool is_dot(const char* n) noexcept {
  return n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'));
}

// Opens the directory `name` in `parent` without following a symlink. A directory its owner
// made unreadable (chmod 000) gets 0700 back: whoever removes the tree is its owner or root.
// Returns the fd or -errno.
int open_dir(int parent, const char* name) noexcept {
  int fd = ::openat(parent, name, kDirFlags);
  if (fd >= 0) return fd;
  if (errno != EACCES) return -errno;
  struct stat st {};
  if (::fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode) ||
      ::fchmodat(parent, name, 0700, 0) != 0)
    return -EACCES;
  fd = ::openat(parent, name, kDirFlags);
  return fd >= 0 ? fd : -errno;
}

int unlink_entry(int dir, const char* name, int flags) noexcept {
  return ::unlinkat(dir, name, flags) == 0 || errno == ENOENT ? 0 : errno;
}

bool entry_is_dir(int dir, const dirent64* d) noexcept {
  if (d->d_type != DT_UNKNOWN) return d->d_type == DT_DIR;
  struct stat st {};
  return ::fstatat(dir, d->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

// Finds the entry of `dir` that is the directory `child` (same device and inode); copies its
// name into `out` (256 bytes). Returns 0, ENOENT or an errno. Looks at the entries whose d_ino
// matches first, then, since gVisor's getdents does not always report the inode stat does, at
// every entry.
int find_entry(int dir, const struct stat& child, char* out, bool trust_d_ino) noexcept {
  if (::lseek(dir, 0, SEEK_SET) != 0) return errno;
  alignas(8) char buf[kListBytes];
  for (;;) {
    const long n = ::syscall(SYS_getdents64, dir, buf, sizeof buf);
    if (n < 0) return errno;
    if (n == 0) return trust_d_ino ? find_entry(dir, child, out, false) : ENOENT;
    for (long off = 0; off < n;) {
      const auto* d = reinterpret_cast<const dirent64*>(buf + off);
      off += d->d_reclen;
      if ((trust_d_ino && d->d_ino != child.st_ino) || is_dot(d->d_name)) continue;
      struct stat st {};
      if (::fstatat(dir, d->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode) &&
          st.st_dev == child.st_dev && st.st_ino == child.st_ino) {
        const std::size_t len = ::strnlen(d->d_name, 255);
        std::memcpy(out, d->d_name, len);
        out[len] = '\0';
        return 0;
      }
    }
  }
}

}  // namespace

int remove_tree_raw(int parent_fd, const char* name) noexcept {
  int cur = open_dir(parent_fd, name);
  if (cur < 0) {
    const int err = -cur;
    if (err == ENOENT) return 0;
    // A symlink (ELOOP or ENOTDIR with O_NOFOLLOW | O_DIRECTORY) or another non-directory: the
    // entry itself goes.
    if (err == ELOOP || err == ENOTDIR) return unlink_entry(parent_fd, name, 0);
    return err;
  }
  std::size_t depth = 0;  // below `name`: the walk never goes up from depth 0
  int result = 0;
  alignas(8) char buf[kListBytes];
  for (;;) {
    // One pass over `cur`: non-directories go, the first directory is descended into.
    if (::lseek(cur, 0, SEEK_SET) != 0) {
      result = errno;
      break;
    }
    bool seen = false, descended = false;
    while (!descended && result == 0) {
      const long n = ::syscall(SYS_getdents64, cur, buf, sizeof buf);
      if (n < 0) result = errno;
      if (n <= 0) break;
      for (long off = 0; off < n && !descended && result == 0;) {
        const auto* d = reinterpret_cast<const dirent64*>(buf + off);
        off += d->d_reclen;
        if (is_dot(d->d_name)) continue;
        seen = true;
        if (!entry_is_dir(cur, d)) {
          result = unlink_entry(cur, d->d_name, 0);
          continue;
        }
        const int child = open_dir(cur, d->d_name);
        if (child == -ENOENT) continue;
        if (child < 0) {
          result = -child;
          continue;
        }
        ::close(cur);
        cur = child;
        ++depth;
        descended = true;
      }
    }
    if (result != 0) break;
    if (descended || seen) continue;  // list again until a pass finds it empty

    // `cur` is empty: back up and remove it, unless it is `name` itself.
    if (depth == 0) break;
    struct stat here {};
    if (::fstat(cur, &here) != 0) {
      result = errno;
      break;
    }
    const int up = ::openat(cur, "..", kDirFlags);
    if (up < 0) {
      result = errno;
      break;
    }
    ::close(cur);
    cur = up;
    --depth;
    // ".." must hold the directory we came from: otherwise the tree moved under us.
    char child_name[256];
    if (int err = find_entry(cur, here, child_name, true); err != 0) {
      result = err == ENOENT ? EXDEV : err;
      break;
    }
    result = unlink_entry(cur, child_name, AT_REMOVEDIR);
    if (result != 0) break;
  }
  ::close(cur);
  if (result != 0) return result;
  return unlink_entry(parent_fd, name, AT_REMOVEDIR);
}

int remove_entries_owned_by_raw(const char* dir, uid_t uid, std::size_t* removed) noexcept {
  const int fd = ::open(dir, kDirFlags);
  if (fd < 0) return errno == ENOENT || errno == ENOTDIR || errno == ELOOP ? 0 : errno;
  int first_error = 0;
  alignas(8) char buf[kListBytes];
  // Removing while listing may make the listing skip entries: passes until one removes nothing.
  for (int pass = 0; pass < 64; ++pass) {
    std::size_t this_pass = 0;
    if (::lseek(fd, 0, SEEK_SET) != 0) {
      first_error = errno;
      break;
    }
    for (;;) {
      const long n = ::syscall(SYS_getdents64, fd, buf, sizeof buf);
      if (n < 0 && first_error == 0) first_error = errno;
      if (n <= 0) break;
      for (long off = 0; off < n;) {
        const auto* d = reinterpret_cast<const dirent64*>(buf + off);
        off += d->d_reclen;
        if (is_dot(d->d_name)) continue;
        struct stat st {};
        if (::fstatat(fd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_uid != uid) continue;
        if (int err = remove_tree_raw(fd, d->d_name); err != 0) {
          if (first_error == 0) first_error = err;
          continue;
        }
        ++this_pass;
      }
    }
    if (removed != nullptr) *removed += this_pass;
    if (this_pass == 0) break;
  }
  ::close(fd);
  return first_error;
}

base::sys::Result<std::vector<std::string>> entries_owned_by(int dir_fd, uid_t uid) {
  std::vector<std::string> out;
  if (::lseek(dir_fd, 0, SEEK_SET) != 0) return base::sys::last_errno();
  alignas(8) char buf[kListBytes];
  for (;;) {
    const long n = ::syscall(SYS_getdents64, dir_fd, buf, sizeof buf);
    if (n < 0) return base::sys::last_errno();
    if (n == 0) return out;
    for (long off = 0; off < n;) {
      const auto* d = reinterpret_cast<const dirent64*>(buf + off);
      off += d->d_reclen;
      if (is_dot(d->d_name)) continue;
      struct stat st {};
      if (::fstatat(dir_fd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_uid == uid)
        out.emplace_back(d->d_name);
    }
  }
}

base::sys::Result<void> remove_tree_at(int parent_fd, const char* name) {
  if (int err = remove_tree_raw(parent_fd, name); err != 0) return base::sys::errno_code(err);
  return {};
}

base::sys::Result<std::size_t> remove_entries_owned_by(const std::string& dir, uid_t uid) {
  std::size_t removed = 0;
  if (int err = remove_entries_owned_by_raw(dir.c_str(), uid, &removed); err != 0)
    return base::sys::errno_code(err);
  return removed;
}

// ---------------------------------------------------------------------------------------------

base::sys::Result<ScratchRoot> ScratchRoot::create(const std::string& base, bool shared) {
  if (base.empty() || base[0] != '/') return base::sys::errno_code(EINVAL);
  if (::mkdir(base.c_str(), 0711) != 0 && errno != EEXIST) return base::sys::last_errno();
  ScratchRoot root;
  root.base_fd_.reset(::open(base.c_str(), kDirFlags));
  if (!root.base_fd_)
    return base::sys::last_errno();  // ELOOP/ENOTDIR: a symlink planted in its place
  struct stat st {};
  if (::fstat(root.base_fd_.get(), &st) != 0) return base::sys::last_errno();
  if (st.st_uid != ::geteuid() || (st.st_mode & 022) != 0) return base::sys::errno_code(EPERM);

  // What servers killed without their teardown left: srv-<pid>-<n> with no process <pid>.
  if (auto ours = entries_owned_by(root.base_fd_.get(), ::geteuid())) {
    for (const auto& name : *ours) {
      if (name.rfind("srv-", 0) != 0) continue;
      const long pid = std::strtol(name.c_str() + 4, nullptr, 10);
      if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
        (void)remove_tree_raw(root.base_fd_.get(), name.c_str());
    }
  }

  static unsigned counter = 0;
  const mode_t mode = shared ? 01733 : 0700;
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::string name = "srv-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    if (::mkdirat(root.base_fd_.get(), name.c_str(), 0700) != 0) {
      if (errno == EEXIST) continue;
      return base::sys::last_errno();
    }
    root.fd_.reset(::openat(root.base_fd_.get(), name.c_str(), kDirFlags));
    if (!root.fd_) return base::sys::last_errno();
    // mkdir applied the umask (and cannot set the sticky bit everywhere).
    if (::fchmod(root.fd_.get(), mode) != 0) return base::sys::last_errno();
    root.path_ = base + (base.back() == '/' ? "" : "/") + name;
    root.name_ = std::move(name);
    return root;
  }
  return base::sys::errno_code(EEXIST);
}

ScratchRoot& ScratchRoot::operator=(ScratchRoot&& other) noexcept {
  if (this != &other) {
    remove();
    path_ = std::move(other.path_);
    base_fd_ = std::move(other.base_fd_);
    name_ = std::move(other.name_);
    fd_ = std::move(other.fd_);
  }
  return *this;
}

ScratchRoot::~ScratchRoot() { remove(); }

void ScratchRoot::remove() noexcept {
  if (!base_fd_ || name_.empty()) return;
  fd_.reset();
  (void)remove_tree_raw(base_fd_.get(), name_.c_str());
  base_fd_.reset();
  name_.clear();
}

std::string ScratchRoot::new_run_name() {
  unsigned char bytes[16] = {};
  std::size_t got = 0;
  while (got < sizeof bytes) {
    const ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n > 0) got += static_cast<std::size_t>(n);
    if (n < 0 && errno != EINTR)
      throw std::system_error(errno, std::generic_category(), "getrandom");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string name = "run-";
  for (unsigned char b : bytes) {
    name.push_back(kHex[b >> 4]);
    name.push_back(kHex[b & 15]);
  }
  return name;
}

}  // namespace pysandbox::jail
