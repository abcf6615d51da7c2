// pysandbox-zygote: a pre-initialised interpreter that forks one sandboxed child per request.
//
// Started by the server with its control socket as fd 3 (zygote/protocol.hpp). It imports the
// runner and the preloads once, says hello, then loops: receive a request with the run's fds,
// fork a child straight into fresh namespaces (jail::Spawner::fork_sandboxed, CLONE_PARENT so the
// server owns it), pass the child's pidfd back. The zygote never runs user code and never reads a
// request's script or stdin.
#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "jail/spawner.hpp"
#include "jail/sys/fd_passing.hpp"
#include "seccomp_policies/policy.hpp"
#include "zygote/huge_pages.hpp"
#include "zygote/interpreter.hpp"
#include "zygote/protocol.hpp"

namespace {

using namespace pysandbox;

struct Args {
  zygote::InterpreterOptions interpreter;
  std::string policy_path;
  std::uint64_t tmpfs_bytes = 64ull << 20;
  std::vector<std::string> ro_paths;
  pid_t parent = 0;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "pysandbox-zygote: %s\nusage: pysandbox-zygote --python PATH --bootstrap FILE "
               "--runner FILE --policy FILE --tmpfs-bytes N --parent-pid PID [--ro-path P]... "
               "[--preload MODULE]...\n(started by pysandboxd with its control socket on fd 3)\n",
               why);
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) usage(("missing value for " + flag).c_str());
    const std::string value = argv[++i];
    if (flag == "--python") {
      a.interpreter.python_path = value;
    } else if (flag == "--bootstrap") {
      a.interpreter.bootstrap_path = value;
    } else if (flag == "--runner") {
      a.interpreter.runner_path = value;
    } else if (flag == "--preload") {
      a.interpreter.preload.push_back(value);
    } else if (flag == "--policy") {
      a.policy_path = value;
    } else if (flag == "--tmpfs-bytes") {
      a.tmpfs_bytes = std::strtoull(value.c_str(), nullptr, 10);
    } else if (flag == "--ro-path") {
      a.ro_paths.push_back(value);
    } else if (flag == "--parent-pid") {
      a.parent = static_cast<pid_t>(std::strtol(value.c_str(), nullptr, 10));
    } else {
      usage(("unknown flag " + flag).c_str());
    }
  }
  if (a.interpreter.python_path.empty() || a.interpreter.bootstrap_path.empty() ||
      a.interpreter.runner_path.empty() || a.policy_path.empty() || a.parent <= 0) {
    usage("missing a required flag");
  }
  return a;
}

void send_hello(const std::string& json) {
  std::string text =
      json.size() <= zygote::kMaxHelloBytes ? json : zygote::error_hello("hello too long");
  (void)jail::sys::send_with_fds(zygote::kControlFd, std::as_bytes(std::span(text)), {});
}

}  // namespace

int main(int argc, char** argv) {
  // The server's death ends the zygote (and, through their own PR_SET_PDEATHSIG, its children).
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  Args args = parse(argc, argv);
  if (::getppid() != args.parent) return 3;  // the server died before the line above
  // Only 0..2 and the control socket: nothing else of the server's may reach a child.
  ::close_range(zygote::kControlFd + 1, ~0U, 0);

  // The same jail as the cold path: mount plan and seccomp policy built from the same settings.
  std::unique_ptr<seccomp_policies::BpfProgram> bpf;
  try {
    bpf = std::make_unique<seccomp_policies::BpfProgram>(
        seccomp_policies::Policy::load_file(args.policy_path).compile());
  } catch (const std::exception& e) {
    send_hello(zygote::error_hello(std::string("seccomp policy: ") + e.what()));
    std::fprintf(stderr, "pysandbox-zygote: %s\n", e.what());
    return 1;
  }
  jail::JailConfig config;
  config.executable = args.interpreter.python_path;
  config.argv = {args.interpreter.python_path};
  config.mounts.ro_paths = args.ro_paths;
  config.mounts.tmpfs_bytes = args.tmpfs_bytes;
  config.mounts.prebuilt_root = true;
  config.seccomp = bpf.get();
  auto root_plan = jail::build_root_plan(config.mounts);
  if (!root_plan) {
    send_hello(zygote::error_hello("invalid sandbox configuration"));
    return 1;
  }

  // The interpreter and its preloads come from the host's filesystem: load them first.
  const std::string hello = zygote::start_interpreter(args.interpreter);
  if (hello.find("\"ok\": true") == std::string::npos) {
    send_hello(hello);
    return 1;
  }

  const auto collapsed = zygote::collapse_anonymous_memory();

  // Then build the sandbox's read-only root once, in a mount namespace of our own, and move into
  // it: each child's new mount namespace is a copy of this finished tree and only adds its /tmp
  // and /proc (instead of some sixty mount steps and a copy of the host's tree per request).
  // The host's /proc stays reachable through one dirfd, for the children's uid/gid maps; the
  // children close it with every other fd before anything of theirs runs.
  // This needs CAP_SYS_ADMIN where the zygote runs (a host's root has it; a least-privilege
  // container does not): without it, each child replays the whole plan inside its own user
  // namespace and creates its own network namespace, exactly as a cold sandbox does.
  std::string layout = "prebuilt root, network namespace created ahead";
  jail::sys::UniqueFd host_proc(::open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (host_proc && ::unshare(CLONE_NEWNS) == 0) {
    for (const auto& op : *root_plan) {
      if (int err = jail::apply_mount_op(op); err != 0) {
        send_hello(zygote::error_hello(op.describe() + ": " + std::strerror(err)));
        return 1;
      }
    }
    config.host_proc_fd = host_proc.get();
    // Each child is born in the network namespace the zygote is in at that moment; the zygote
    // leaves it for a new one right after the fork, so no two children ever share one.
    if (::unshare(CLONE_NEWNET) != 0) {
      send_hello(zygote::error_hello(std::string("network namespace: ") + std::strerror(errno)));
      return 1;
    }
    config.inherit_network_namespace = true;
  } else {
    layout = std::string("per child (unshare(CLONE_NEWNS): ") + std::strerror(errno) + ")";
    config.mounts.prebuilt_root = false;
    host_proc.reset();
  }
  auto spawner = jail::Spawner::create(config);
  if (!spawner) {
    send_hello(zygote::error_hello("invalid sandbox configuration"));
    return 1;
  }
  // The interpreter's hello plus what this side knows.
  std::string full_hello = hello.substr(0, hello.rfind('}'));
  full_hello += ", \"layout\": \"" + layout +
                "\", \"huge_page_bytes\": " + std::to_string(collapsed.collapsed_bytes) + "}";
  send_hello(full_hello);

  for (;;) {
    zygote::SpawnRequest request;
    auto received = jail::sys::recv_with_fds(zygote::kControlFd,
                                             std::as_writable_bytes(std::span(&request, 1)));
    if (!received) {
      if (received.error() == boost::system::errc::interrupted) continue;
      return 1;
    }
    if (received->bytes == 0) return 0;  // the server closed the socket: drain done
    zygote::SpawnReply reply;
    reply.id = request.id;
    const std::size_t want = zygote::kRunFds + (request.has_cgroup != 0 ? 1 : 0);
    if (received->truncated || received->bytes != sizeof request ||
        request.magic != zygote::kMagic || received->fd_count != want) {
      reply.err = EPROTO;
      (void)jail::sys::send_with_fds(zygote::kControlFd, std::as_bytes(std::span(&reply, 1)), {});
      continue;
    }

    jail::RunParams params;
    params.host_uid = request.host_uid;
    params.host_gid = request.host_gid;
    params.limits.address_space = request.address_space;
    params.limits.cpu_seconds = request.cpu_seconds;
    params.limits.processes = request.processes;
    params.limits.open_files = request.open_files;
    params.limits.file_size = request.file_size;
    for (std::size_t i = 0; i < 5; ++i) params.fds[i] = received->fds[i].get();
    if (request.has_cgroup != 0) params.cgroup_fd = received->fds[6].get();

    zygote::before_fork();
    auto spawned = spawner->fork_sandboxed(params, received->fds[5].get());
    if (spawned && spawned->pid == 0) zygote::run_child();  // the sandboxed child
    zygote::after_fork_parent();

    int pidfd = -1;
    if (spawned) {
      reply.pid = spawned->pid;
      pidfd = spawned->pidfd.get();
    } else {
      reply.err = spawned.error().value();
    }
    auto sent = jail::sys::send_with_fds(
        zygote::kControlFd, std::as_bytes(std::span(&reply, 1)),
        pidfd >= 0 ? std::span<const int>(&pidfd, 1) : std::span<const int>());
    if (!sent) {
      // The server is gone or the socket broke: the child (its setup channel held by nobody
      // but us) must not linger.
      if (spawned) (void)jail::sys::pidfd_send_signal(spawned->pidfd.get(), SIGKILL);
      return 1;
    }
    // Our copies of the run's fds go first: the server sees EOF on the setup channel only once
    // nobody but the child holds it.
    for (auto& fd : received->fds) fd.reset();
    if (!spawned || !config.inherit_network_namespace) continue;
    spawned->pidfd.reset();
    // A fresh network namespace for the next child, now that this one was handed over (the
    // server is already waiting on the child; this is off its clock). Failing that, stop: the
    // next child must not join this one's namespace.
    if (::unshare(CLONE_NEWNET) != 0) {
      std::fprintf(stderr, "pysandbox-zygote: unshare(CLONE_NEWNET): %s\n", std::strerror(errno));
      return 1;
    }
  }
}
