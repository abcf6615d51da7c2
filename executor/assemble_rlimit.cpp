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
#include "jail/uid_sweep.hpp"
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
  params.fds = jail::RunFds::all(devnull.get());
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

// The filter of rlimit mode, when it compiles and holds here (null otherwise: why in `facts`).
std::unique_ptr<seccomp_policies::BpfProgram> load_seccomp(RlimitFacts& facts) {
  const std::string& path = facts.seccomp_policy_path;
  auto bpf = compile_policy(path, facts.seccomp_reason);
  if (!bpf) {
    log_capability("seccomp(" + path + ")", false, facts.seccomp_reason);
    return bpf;
  }
  const auto holds = probe::seccomp_holds(*bpf);
  log_capability("seccomp(" + path + ")", holds.ok, holds.detail, holds.err);
  if (!holds.ok) {
    facts.seccomp_reason = holds.detail;
    bpf.reset();
  }
  facts.seccomp = bpf != nullptr;
  return bpf;
}

// The rlimits that hold here ("AS", "CPU", ...).
std::vector<std::string> working_rlimits() {
  std::vector<std::string> names;
  for (const auto& limit : probe::rlimits()) {
    log_capability(limit.name, limit.ok, limit.detail, limit.err);
    if (limit.ok) names.push_back(limit.name.substr(std::string_view("rlimit_").size()));
  }
  return names;
}

// A run's orphans (daemons) are reparented to us rather than to the system's init, so that once
// killed they are reaped at once, by us. gVisor refuses it; there the server is usually pid 1 of
// its container, which amounts to the same.
OrphanReaper adopt_orphans() {
  if (::getpid() == 1) return OrphanReaper::kServerAsPid1;
  if (auto sub = base::sys::become_child_subreaper(); !sub) {
    log_capability("child_subreaper", false,
                   "prctl(PR_SET_CHILD_SUBREAPER): " + sub.error().message(), sub.error().value());
    return OrphanReaper::kSystemInit;
  }
  log_capability("child_subreaper", true, "");
  return OrphanReaper::kServerAsSubreaper;
}

// Every namespace a root server can still create without a user namespace, as far as the probe
// found it to work (gVisor: all of them, but no pivot_root).
void use_root_namespaces(std::uint64_t tmpfs_bytes, jail::RlimitNamespaces& ns,
                         RlimitExecutorOptions& options, RlimitFacts& facts) {
  const probe::RootNamespaces found = probe::root_namespaces();
  for (const auto& c : found.items) log_capability(c.name, c.ok, c.detail, c.err);
  ns.tmpfs_bytes = tmpfs_bytes;
  const bool pid_ns = (found.clone_flags & CLONE_NEWPID) != 0;
  if (pid_ns) {
    ns.clone_flags |= CLONE_NEWPID;
    facts.namespaces.emplace_back("pid");
  }
  if (found.mounts) {
    ns.clone_flags |= CLONE_NEWNS;
    ns.tolerate_private_failure = found.tolerate_private_failure;
    ns.mount_proc = pid_ns && found.proc;
    ns.tmpfs_dirs = options.shared_tmp_dirs;
    options.private_tmp =
        std::find(ns.tmpfs_dirs.begin(), ns.tmpfs_dirs.end(), "/tmp") != ns.tmpfs_dirs.end();
    options.shared_tmp_dirs.clear();
    facts.namespaces.emplace_back("mount");
    facts.mount_proc = ns.mount_proc;
    facts.tmpfs_dirs = ns.tmpfs_dirs;
  }
  if ((found.clone_flags & CLONE_NEWNET) && found.net_isolated) {
    ns.clone_flags |= CLONE_NEWNET;
    facts.namespaces.emplace_back("network");
  }
  for (const auto& [flag, name] : {std::pair{CLONE_NEWIPC, "ipc"}, {CLONE_NEWUTS, "uts"}}) {
    if (found.clone_flags & flag) {
      ns.clone_flags |= flag;
      facts.namespaces.emplace_back(name);
    }
  }
}

// Where the runs can see the server in /proc and the kernel does not guard its environ (gVisor),
// the server's environment (cloud credentials, ...) would be theirs to read: blank it in memory.
// Everything the server needs from it was read at startup. Returns why it was blanked.
std::optional<std::string> guard_environment(const Settings& settings,
                                             const RlimitExecutorOptions& options,
                                             bool mount_proc) {
  if (!options.switch_ids || mount_proc) return std::nullopt;
  const auto guarded = probe::proc_environ_protected(settings.uid_base, settings.uid_base);
  log_capability(guarded.name, guarded.ok, guarded.detail, guarded.err);
  if (guarded.ok) return std::nullopt;
  scrub_environment();
  return guarded.detail;
}

std::optional<jail::ScratchRoot> make_scratch_root(const Settings& settings,
                                                   const RlimitExecutorOptions& options) {
  if (options.private_tmp) return std::nullopt;
  const std::string base =
      settings.rlimit_scratch_dir.empty() ? kDefaultScratchBase : settings.rlimit_scratch_dir;
  auto created = jail::ScratchRoot::create(base, options.switch_ids);
  if (!created) {
    throw std::runtime_error("rlimit mode: cannot create the scratch directory under " + base +
                             ": " + created.error().message() +
                             " (it must be a directory owned by the server that only the "
                             "server can write; set --rlimit-scratch-dir to use another)");
  }
  return std::move(*created);
}

// Leftovers of a previous server with the same uid range (a crash skips its teardown) would
// share a uid with our runs: they go first.
void sweep_leftovers(const Settings& settings, const RlimitExecutorOptions& options) {
  if (!options.switch_ids) return;
  for (unsigned slot = 0; slot < settings.max_concurrency; ++slot) {
    const uid_t uid = settings.uid_base + slot;
    (void)jail::kill_all_of_uid(uid, uid);
    for (const auto& dir : options.shared_tmp_dirs) (void)jail::remove_entries_owned_by(dir, uid);
  }
}

// Throws unless `python -c pass` runs in this jail.
void trial_run(const jail::RlimitJailConfig& config, const Settings& settings,
               const std::optional<jail::ScratchRoot>& scratch,
               const RlimitExecutorOptions& options) {
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
}

}  // namespace

std::unique_ptr<Executor> assemble_rlimit(boost::asio::any_io_executor io, Settings settings,
                                          bool explicit_policy, const std::string& runner,
                                          const ModeDecision& decision) {
  // The rlimit policy refuses socket() altogether: without a network namespace, AF_INET reaches
  // the server's network and AF_UNIX the host's sockets.
  if (!explicit_policy) settings.seccomp_policy_path = settings.data_dir + "/rlimit.policy";
  RlimitFacts facts;
  facts.seccomp_policy_path = settings.seccomp_policy_path;
  auto bpf = load_seccomp(facts);
  facts.rlimits = working_rlimits();

  RlimitExecutorOptions options;
  options.switch_ids = ::geteuid() == 0;
  options.shared_tmp_dirs = world_writable_dirs();
  facts.switch_ids = options.switch_ids;
  facts.orphans = adopt_orphans();

  jail::RlimitJailConfig config;
  config.executable = settings.python_path;
  config.init_path = settings.init_path;
  config.argv = {settings.python_path, "-I", "-B", "-u", "-c", runner};
  config.env = kSandboxEnv;
  config.seccomp = bpf.get();
  // --rlimit-namespaces=off turns them off.
  if (options.switch_ids && settings.rlimit_namespaces)
    use_root_namespaces(settings.tmpfs_bytes, config.namespaces, options, facts);
  facts.tmpfs_bytes = settings.tmpfs_bytes;
  facts.environment_blanked = guard_environment(settings, options, config.namespaces.mount_proc);

  std::optional<jail::ScratchRoot> scratch = make_scratch_root(settings, options);
  sweep_leftovers(settings, options);
  trial_run(config, settings, scratch, options);
  auto spawner = jail::RlimitSpawner::create(config);
  if (!spawner)
    throw std::runtime_error("invalid sandbox configuration: " + spawner.error().message());

  if (scratch) facts.scratch_path = scratch->path();
  facts.shared_tmp_dirs = options.shared_tmp_dirs;
  facts.uid_base = settings.uid_base;
  facts.uid_count = settings.max_concurrency;
  return std::make_unique<RlimitExecutor>(std::move(io), std::move(settings), std::move(bpf),
                                          std::move(*spawner), std::move(scratch),
                                          std::move(options), describe_rlimit(decision, facts));
}

}  // namespace pysandbox::executor
