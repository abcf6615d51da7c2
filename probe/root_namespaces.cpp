#include "probe/root_namespaces.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "base/sys/syscalls.hpp"
#include "base/sys/unique_fd.hpp"
#include "probe/child.hpp"

namespace pysandbox::probe {

namespace {

std::string errno_text(int err) { return std::strerror(err); }

Facility make(std::string name, bool ok, int err = 0, std::string detail = {}) {
  return Facility{std::move(name), ok, err, std::move(detail)};
}

// Async-signal-safe: runs in the forked child (root, new namespaces, no user namespace).
void root_ns_child(int out, int ready_write, int go_read, const char* probe_dir, const char* marker,
                   bool pid_ns, bool net_ns, const sockaddr_in* listener) noexcept {
  if (net_ns) {
    const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int rc = s < 0 ? errno : 0;
    if (s >= 0) {
      rc = ::connect(s, reinterpret_cast<const sockaddr*>(listener), sizeof *listener) == 0 ? 0
                                                                                            : errno;
      ::close(s);
    }
    report(out, kRootConnect, rc);  // 0: reached our loopback, not isolated
  }
  report(out, kRootPrivate,
         ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 ? 0 : errno);
  int err = ::mount("tmpfs", probe_dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0700") == 0
                ? 0
                : errno;
  report(out, kRootProbeTmpfs, err);
  if (err == 0) {
    const int fd = ::open(marker, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    report(out, kRootMarker, fd >= 0 ? 0 : errno);
    if (fd >= 0) ::close(fd);
  }
  // The parent looks for the marker in its own view and answers 'y' if it is not there.
  const char ready = 1;
  if (::write(ready_write, &ready, 1) != 1) ::_exit(1);
  char verdict = 0;
  if (::read(go_read, &verdict, 1) != 1 || verdict != 'y') return;
  if (pid_ns) {
    report(out, kRootProc,
           ::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) == 0
               ? 0
               : errno);
    char self[16] = {};
    const ssize_t n = ::readlink("/proc/self", self, sizeof self - 1);
    report(out, kRootProcSelf, n == 1 && self[0] == '1' ? 0 : ESRCH);
  }
  report(out, kRootTmpTmpfs,
         ::mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=1777") == 0
             ? 0
             : errno);
}

// Each CLONE_NEW* flag alone, with a plain clone.
void probe_clone_flags(RootNamespaces& out) {
  static constexpr struct {
    unsigned long flag;
    const char* name;
  } kFlags[] = {{CLONE_NEWPID, "root_pid_ns"},
                {CLONE_NEWNS, "root_mount_ns"},
                {CLONE_NEWNET, "root_net_ns"},
                {CLONE_NEWIPC, "root_ipc_ns"},
                {CLONE_NEWUTS, "root_uts_ns"}};
  for (const auto& f : kFlags) {
    ChildOptions options;
    options.clone_flags = f.flag;
    const ChildRun run = run_in_child({}, options);
    if (run.fork_err != 0) {
      out.items.push_back(
          make(f.name, false, run.fork_err, run.fork_call + ": " + errno_text(run.fork_err)));
      continue;
    }
    out.clone_flags |= f.flag;
    out.items.push_back(make(f.name, true));
  }
}

// A listener on our loopback, for the child to try to reach from its network namespace.
struct Loopback {
  base::sys::UniqueFd fd;
  sockaddr_in addr{};
  bool listening = false;
};

Loopback listen_on_loopback() {
  Loopback l;
  l.fd = base::sys::UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  l.addr.sin_family = AF_INET;
  l.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof l.addr;
  l.listening = l.fd &&
                ::bind(l.fd.get(), reinterpret_cast<sockaddr*>(&l.addr), sizeof l.addr) == 0 &&
                ::listen(l.fd.get(), 1) == 0 &&
                ::getsockname(l.fd.get(), reinterpret_cast<sockaddr*>(&l.addr), &len) == 0;
  return l;
}

// One throwaway child in the namespaces that worked: its mount steps, and whether its tmpfs
// showed up in our view (checked between its "ready" and our "go").
struct MountTrialRun {
  ChildRun run;
  MountTrial trial;
};

MountTrialRun run_mount_trial(const std::string& dir, bool pid_ns, bool net_ns,
                              const Loopback& loopback) {
  MountTrialRun out;
  auto ready = base::sys::make_pipe();
  auto go = base::sys::make_pipe();
  if (!ready || !go) {
    out.run.fork_err = EMFILE;
    out.run.fork_call = "pipe";
    return out;
  }
  const std::string marker = dir + "/marker";
  ChildOptions options;
  options.clone_flags = CLONE_NEWNS | (pid_ns ? CLONE_NEWPID : 0) | (net_ns ? CLONE_NEWNET : 0);
  const int ready_read = ready->read.get(), ready_write = ready->write.get();
  const int go_read = go->read.get(), go_write = go->write.get();
  const bool net_probe = net_ns && loopback.listening;
  MountTrial& trial = out.trial;
  out.run = run_in_child(
      [&](int records) {
        ::close(ready_read);
        ::close(go_write);
        root_ns_child(records, ready_write, go_read, dir.c_str(), marker.c_str(), pid_ns, net_probe,
                      &loopback.addr);
      },
      options,
      [&](pid_t) {
        ready->write.reset();
        go->read.reset();
        char c = 0;
        trial.child_ready = ::read(ready->read.get(), &c, 1) == 1;
        // The child's tmpfs (and marker) must not be visible from here.
        struct stat st {};
        trial.propagated = trial.child_ready && ::lstat(marker.c_str(), &st) == 0;
        if (trial.propagated) ::umount2(dir.c_str(), MNT_DETACH);  // undo it on our side
        const char verdict = trial.child_ready && !trial.propagated ? 'y' : 'n';
        ssize_t ignored = ::write(go->write.get(), &verdict, 1);
        (void)ignored;
        go->write.reset();
        return false;
      });
  trial.step_err.fill(-1);
  for (const Record& r : out.run.records) {
    if (r.step >= 0 && r.step < static_cast<int>(trial.step_err.size())) {
      trial.step_err[static_cast<std::size_t>(r.step)] = r.err;
    }
  }
  return out;
}

std::string step_text(int err) { return err > 0 ? errno_text(err) : std::string("not reached"); }

void report_trial(const MountTrial& trial, bool pid_ns, bool net_probe, RootNamespaces& out) {
  const std::string why = mount_failure(trial);
  out.mounts = why.empty();
  out.tolerate_private_failure = out.mounts && trial.step_err[kRootPrivate] == EINVAL;
  out.items.push_back(out.mounts ? make("root_mounts", true, 0,
                                        out.tolerate_private_failure
                                            ? "make-rprivate: Invalid argument, but mounts "
                                              "do not propagate here"
                                            : "")
                                 : make("root_mounts", false, 0, why));
  if (pid_ns && out.mounts) {
    out.proc = trial.step_err[kRootProc] == 0 && trial.step_err[kRootProcSelf] == 0;
    out.items.push_back(out.proc ? make("root_proc", true)
                                 : make("root_proc", false, std::max(trial.step_err[kRootProc], 0),
                                        "mount proc / readlink /proc/self"));
  }
  if (net_probe) {
    const int rc = trial.step_err[kRootConnect];
    out.net_isolated = rc > 0;
    out.items.push_back(
        out.net_isolated
            ? make("root_net_isolated", true)
            : make("root_net_isolated", false, 0,
                   rc == 0 ? "a new network namespace still reaches our loopback" : "not reached"));
  }
}

}  // namespace

std::string mount_failure(const MountTrial& trial) {
  const auto& e = trial.step_err;
  const int private_err = e[kRootPrivate];
  if (e[kRootProbeTmpfs] != 0) return "mount tmpfs: " + step_text(e[kRootProbeTmpfs]);
  if (trial.propagated) {
    return "a mount in a new mount namespace showed up in ours (make-rprivate: " +
           (private_err == 0 ? std::string("ok") : errno_text(private_err)) + ")";
  }
  if (!trial.child_ready) return "the probe child died";
  if (private_err != 0 && private_err != EINVAL) return "make-rprivate: " + errno_text(private_err);
  if (e[kRootTmpTmpfs] != 0) return "mount tmpfs on /tmp: " + step_text(e[kRootTmpTmpfs]);
  return {};
}

RootNamespaces root_namespaces(const std::string& probe_base) {
  RootNamespaces out;
  probe_clone_flags(out);
  if (!(out.clone_flags & CLONE_NEWNS)) return out;

  // A directory of our own to mount over.
  std::string dir = probe_base + "/pysandbox-mount-probe-XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) {
    out.items.push_back(make("root_mounts", false, errno, "mkdtemp: " + errno_text(errno)));
    return out;
  }
  const bool pid_ns = (out.clone_flags & CLONE_NEWPID) != 0;
  const bool net_ns = (out.clone_flags & CLONE_NEWNET) != 0;
  const Loopback loopback = listen_on_loopback();
  const MountTrialRun trial = run_mount_trial(dir, pid_ns, net_ns, loopback);
  ::umount2(dir.c_str(), MNT_DETACH);  // in case the child's mount landed here after all
  ::rmdir(dir.c_str());
  if (trial.run.fork_err != 0) {
    if (trial.run.fork_call != "pipe") {
      out.items.push_back(make("root_mounts", false, trial.run.fork_err,
                               trial.run.fork_call + ": " + errno_text(trial.run.fork_err)));
    }
    return out;
  }
  report_trial(trial.trial, pid_ns, net_ns && loopback.listening, out);
  return out;
}

}  // namespace pysandbox::probe
