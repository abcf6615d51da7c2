#include "executor/assemble_rlimit.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "base/sys/syscalls.hpp"
#include "base/sys/unique_fd.hpp"
#include "executor/rlimit_executor.hpp"
#include "executor/startup.hpp"
#include "jail/rlimit_spawner.hpp"
#include "jail/sandbox_init.hpp"
#include "jail/scratch_dir.hpp"
#include "probe/proc_environ.hpp"
#include "probe/rlimits.hpp"
#include "probe/root_namespaces.hpp"
#include "probe/seccomp.hpp"

namespace pysandbox::executor {

namespace {

// Where rlimit mode makes its runs' scratch directories (--rlimit-scratch-dir overrides).
constexpr const char* kDefaultScratchBase = "/tmp/pysandbox-rlimit";

// Runs `python -c pass` in the rlimit jail, synchronously: the mode works here only if this does.
std::string probe_rlimit_spawn(const jail::RlimitSpawner& spawner, const jail::ScratchRoot* root,
                               const RlimitExecutorOptions& options, uid_t uid, gid_t gid) {
  jail::RlimitRunParams params;
  const std::string name = jail::ScratchRoot::new_run_name();
  if (root == nullptr) {
    params.cwd = "/tmp";  // the jail's private tmpfs
  } else {
    params.cwd = root->path() + "/" + name;
    params.create_cwd = true;
    params.env = {"HOME=" + params.cwd, "TMPDIR=" + params.cwd};
  }
  base::sys::UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  params.switch_ids = options.switch_ids;
  params.uid = uid;
  params.gid = gid;
  params.limits.address_space = 512ull << 20;
  params.fds = {devnull.get(), devnull.get(), devnull.get(), devnull.get(), devnull.get()};
  auto spawned = spawner.spawn(params);
  if (!spawned) return "fork: " + spawned.error().message();
  const jail::ChannelReport report = jail::read_channel_blocking(spawned->channel.get());
  auto status = base::sys::wait4_blocking(spawned->pid);
  std::string cleanup;
  if (options.switch_ids) {
    (void)jail::kill_all_of_uid(uid, gid);
    std::vector<std::string> names;
    if (root != nullptr) names.push_back(name);
    if (auto r = jail::remove_as_uid(uid, gid, root ? root->fd() : -1, names, {}); !r)
      cleanup = "removing the run's directory as its uid: " + r.error().message();
  } else if (root != nullptr) {
    if (auto r = jail::remove_tree_at(root->fd(), name.c_str()); !r)
      cleanup = "removing the run's directory: " + r.error().message();
  }
  if (report.setup_failed) {
    const auto& r = *report.setup_failed;
    return jail::RlimitSpawner::describe(jail::SetupFailure{r.step, r.index, r.err});
  }
  if (!status) return "wait4: " + status.error().message();
  if (!report.exited) return "the probe's init ended without a report";
  if (report.exited->status != 0)
    return "probe process " + jail::describe_wait_status(report.exited->status);
  return cleanup;
}

// The world-writable directories of this host: shared by every uid unless the jail covers them.
std::vector<std::string> world_writable_dirs() {
  std::vector<std::string> out;
  for (const char* dir : {"/tmp", "/var/tmp", "/dev/shm", "/run/lock"}) {
    struct stat st {};
    if (::lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & S_IWOTH) != 0)
      out.emplace_back(dir);
  }
  return out;
}

// Zeroes the strings of the process environment where they are, so that /proc/<pid>/environ
// (which reads that memory) shows nothing. getenv() finds nothing afterwards.
void scrub_environment() {
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) std::memset(*e, 0, std::strlen(*e));
}

}  // namespace

std::unique_ptr<Executor> assemble_rlimit(boost::asio::any_io_executor io, Settings settings,
                                          bool explicit_policy, const std::string& runner,
                                          const ModeDecision& decision) {
  // The rlimit policy refuses socket() altogether: without a network namespace, AF_INET reaches
  // the server's network and AF_UNIX the host's sockets.
  if (!explicit_policy) settings.seccomp_policy_path = settings.data_dir + "/rlimit.policy";
  std::string seccomp_why;
  auto bpf = compile_policy(settings.seccomp_policy_path, seccomp_why);
  if (bpf) {
    const auto holds = probe::seccomp_holds(*bpf);
    log_capability("seccomp(" + settings.seccomp_policy_path + ")", holds.ok, holds.detail,
                   holds.err);
    if (!holds.ok) {
      seccomp_why = holds.detail;
      bpf.reset();
    }
  } else {
    log_capability("seccomp(" + settings.seccomp_policy_path + ")", false, seccomp_why);
  }

  boost::json::array rlimits;
  for (const auto& limit : probe::rlimits()) {
    log_capability(limit.name, limit.ok, limit.detail, limit.err);
    if (limit.ok) rlimits.emplace_back(limit.name.substr(std::string_view("rlimit_").size()));
  }

  const std::string base =
      settings.rlimit_scratch_dir.empty() ? kDefaultScratchBase : settings.rlimit_scratch_dir;
  const bool use_namespaces = settings.rlimit_namespaces;

  RlimitExecutorOptions options;
  options.switch_ids = ::geteuid() == 0;
  options.shared_tmp_dirs = world_writable_dirs();
  // A run's orphans (daemons) are reparented to us rather than to the system's init, so that
  // once killed they are reaped at once, by us. gVisor refuses it; there the server is usually
  // pid 1 of its container, which amounts to the same.
  std::string orphans = "reparented to the server (child subreaper), killed and reaped by it";
  if (::getpid() == 1) {
    orphans = "reparented to the server (pid 1), killed and reaped by it";
  } else if (auto sub = base::sys::become_child_subreaper(); !sub) {
    orphans = "reparented to the system's init: killed by the server, reaped by init";
    log_capability("child_subreaper", false,
                   "prctl(PR_SET_CHILD_SUBREAPER): " + sub.error().message(), sub.error().value());
  } else {
    log_capability("child_subreaper", true, "");
  }

  jail::RlimitJailConfig config;
  config.executable = settings.python_path;
  config.init_path = settings.init_path;
  config.argv = {settings.python_path, "-I", "-B", "-u", "-c", runner};
  config.env = kSandboxEnv;
  config.seccomp = bpf.get();

  // Every namespace a root server can still create without a user namespace, as far as the
  // probe found it to work (gVisor: all of them, but no pivot_root). --rlimit-namespaces=off
  // turns them off.
  boost::json::array namespaces;
  std::string root =
      "the host's own filesystem (no mount namespace): only file permissions "
      "protect it; the world-writable directories are shared";
  std::string network =
      bpf ? "the server's network namespace; socket() refused by seccomp (socketpair allowed)"
          : "the server's network namespace, unrestricted (no seccomp)";
  bool pid_ns = false;
  if (options.switch_ids && use_namespaces) {
    const probe::RootNamespaces found = probe::root_namespaces();
    for (const auto& c : found.items) log_capability(c.name, c.ok, c.detail, c.err);
    jail::RlimitNamespaces& ns = config.namespaces;
    ns.tmpfs_bytes = settings.tmpfs_bytes;
    if (found.clone_flags & CLONE_NEWPID) {
      ns.clone_flags |= CLONE_NEWPID;
      namespaces.emplace_back("pid");
      pid_ns = true;
    }
    if (found.mounts) {
      ns.clone_flags |= CLONE_NEWNS;
      ns.tolerate_private_failure = found.tolerate_private_failure;
      ns.mount_proc = pid_ns && found.proc;
      ns.tmpfs_dirs = options.shared_tmp_dirs;
      options.private_tmp =
          std::find(ns.tmpfs_dirs.begin(), ns.tmpfs_dirs.end(), "/tmp") != ns.tmpfs_dirs.end();
      options.shared_tmp_dirs.clear();
      namespaces.emplace_back("mount");
      std::string tmpfs;
      for (const auto& d : ns.tmpfs_dirs) tmpfs += (tmpfs.empty() ? "" : ", ") + d;
      root =
          "the host's own filesystem (rlimit mode does not pivot_root: world-readable files "
          "stay readable), with " +
          std::string(ns.mount_proc ? "a fresh /proc of its own PID namespace and " : "") +
          "a private tmpfs of " + std::to_string(settings.tmpfs_bytes) + " bytes over each of " +
          tmpfs;
    }
    if ((found.clone_flags & CLONE_NEWNET) && found.net_isolated) {
      ns.clone_flags |= CLONE_NEWNET;
      namespaces.emplace_back("network");
      network = std::string("a network namespace of its own (loopback only, down)") +
                (bpf ? "; socket() also refused by seccomp" : "");
    }
    for (const auto& [flag, name] : {std::pair{CLONE_NEWIPC, "ipc"}, {CLONE_NEWUTS, "uts"}}) {
      if (found.clone_flags & flag) {
        ns.clone_flags |= flag;
        namespaces.emplace_back(name);
      }
    }
  }

  // Where the runs can see the server in /proc and the kernel does not guard its environ
  // (gVisor), the server's environment (cloud credentials, ...) would be theirs to read: blank it
  // in memory. Everything the server needs from it was read at startup.
  std::string environment = "readable by root only (/proc/<pid>/environ is ptrace-guarded)";
  if (options.switch_ids && !(config.namespaces.mount_proc)) {
    const auto guarded = probe::proc_environ_protected(settings.uid_base, settings.uid_base);
    log_capability(guarded.name, guarded.ok, guarded.detail, guarded.err);
    if (!guarded.ok) {
      scrub_environment();
      environment = "blanked in memory at startup: " + guarded.detail;
    }
  } else if (config.namespaces.mount_proc) {
    environment = "invisible to the runs (their /proc shows their own PID namespace only)";
  }

  std::optional<jail::ScratchRoot> scratch;
  if (!options.private_tmp) {
    auto created = jail::ScratchRoot::create(base, options.switch_ids);
    if (!created) {
      throw std::runtime_error("rlimit mode: cannot create the scratch directory under " + base +
                               ": " + created.error().message() +
                               " (it must be a directory owned by the server that only the "
                               "server can write; set --rlimit-scratch-dir to use another)");
    }
    scratch.emplace(std::move(*created));
  }

  // Leftovers of a previous server with the same uid range (a crash skips its teardown) would
  // share a uid with our runs: they go first.
  if (options.switch_ids) {
    for (unsigned slot = 0; slot < settings.max_concurrency; ++slot) {
      const uid_t uid = settings.uid_base + slot;
      (void)jail::kill_all_of_uid(uid, uid);
      for (const auto& dir : options.shared_tmp_dirs) (void)jail::remove_entries_owned_by(dir, uid);
    }
  }

  jail::RlimitJailConfig probe_config = config;
  probe_config.argv = {settings.python_path, "-I", "-B", "-c", "pass"};
  auto probe_spawner = jail::RlimitSpawner::create(probe_config);
  if (!probe_spawner)
    throw std::runtime_error("invalid sandbox configuration: " + probe_spawner.error().message());
  const std::string failed = probe_rlimit_spawn(*probe_spawner, scratch ? &*scratch : nullptr,
                                                options, settings.uid_base, settings.uid_base);
  log_capability("rlimit_jail", failed.empty(), failed);
  if (!failed.empty()) {
    throw std::runtime_error("not even the rlimit sandbox works here: " + failed +
                             " (it needs fork, setrlimit and, as root, setresuid to --uid-base)");
  }
  auto spawner = jail::RlimitSpawner::create(config);
  if (!spawner)
    throw std::runtime_error("invalid sandbox configuration: " + spawner.error().message());

  boost::json::array shared;
  for (const auto& d : options.shared_tmp_dirs) shared.emplace_back(d);
  boost::json::object caps{
      {"mode", "rlimit"},
      {"capabilities", decision.capabilities},
      {"namespaces", std::move(namespaces)},
      {"root", root},
      {"uid", options.switch_ids
                  ? "uid-base + slot, distinct per concurrent run, no supplementary groups"
                  : "the server's own uid (the server is not root): the script can signal the "
                    "server and read what the server can read"},
      {"scratch_dir", scratch ? scratch->path() +
                                    "/run-<random> (cwd, HOME, TMPDIR; made by the run as its "
                                    "uid, mode 0700; removed after the run)"
                              : std::string("/tmp, a private tmpfs (cwd, HOME, TMPDIR)")},
      {"shared_tmp_cleanup",
       options.switch_ids ? boost::json::value(std::move(shared)) : boost::json::value(nullptr)},
      {"seccomp", bpf != nullptr},
      {"seccomp_policy", settings.seccomp_policy_path},
      {"network", network},
      {"server_environment", environment},
      {"pidfd", false},
      {"child_wait", "SIGCHLD + waitid by pid"},
      {"orphans",
       pid_ns ? "stay in the run's PID namespace, which dies with its first process" : orphans},
      {"process_cleanup", options.switch_ids ? "kill(-1) as the run's uid, then /proc checked empty"
                                             : "kill of the run's process group"},
      {"memory_limit", "RLIMIT_AS"},
      {"rlimits", std::move(rlimits)},
      {"cpu_share", cpu_share_text(false, decision.sched_autogroup)},
      {"uids", {{"first", settings.uid_base}, {"count", settings.max_concurrency}}},
  };
  if (bpf) {
    caps["seccomp_kill_action"] = kill_action_text(decision.kill_process_available);
  } else {
    caps["seccomp_reason"] = seccomp_why;
  }
  for (const auto& [key, value] : decision.cgroup_info) caps[key] = value;
  return std::make_unique<RlimitExecutor>(std::move(io), std::move(settings), std::move(bpf),
                                          std::move(*spawner), std::move(scratch),
                                          std::move(options), std::move(caps));
}

}  // namespace pysandbox::executor
