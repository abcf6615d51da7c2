#include "executor/factory.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "cgroups/delegation.hpp"
#include "cgroups/probe.hpp"
#include "executor/mode.hpp"
#include "executor/rlimit_executor.hpp"
#include "executor/sandbox_executor.hpp"
#include "jail/rlimit_spawner.hpp"
#include "jail/sandbox_init.hpp"
#include "jail/scratch_dir.hpp"
#include "jail/sys/unique_fd.hpp"
#include "probe/jail_trial.hpp"
#include "probe/namespaces.hpp"
#include "probe/proc_environ.hpp"
#include "probe/rlimits.hpp"
#include "probe/root_namespaces.hpp"
#include "probe/scheduler.hpp"
#include "probe/seccomp.hpp"
#include "seccomp_policies/compiler.hpp"

namespace pysandbox::executor {

namespace {

// Thread counts fixed before numpy/OpenBLAS load: their pools would otherwise size themselves to
// the host's cores, blow the address-space limit and the pids limit.
const std::vector<std::string> kSandboxEnv = {
    "PATH=/usr/local/bin:/usr/bin:/bin",
    "HOME=/tmp",
    "TMPDIR=/tmp",
    "LANG=C.UTF-8",
    "LC_ALL=C.UTF-8",
    "OPENBLAS_NUM_THREADS=1",
    "OMP_NUM_THREADS=1",
    "MKL_NUM_THREADS=1",
    "NUMEXPR_NUM_THREADS=1",
    "VECLIB_MAXIMUM_THREADS=1",
    "MPLCONFIGDIR=/tmp",
    "MPLBACKEND=Agg",
};

// Where rlimit mode makes its runs' scratch directories (--rlimit-scratch-dir overrides).
constexpr const char* kDefaultScratchBase = "/tmp/pysandbox-rlimit";

std::string default_data_dir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "/usr/local/share/pysandbox";
  return (exe.parent_path().parent_path() / "share" / "pysandbox").string();
}

std::string default_init_path() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "/usr/local/bin/pysandbox-init";
  return (exe.parent_path() / "pysandbox-init").string();
}

std::string read_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(std::string("cannot read the ") + what + " at " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void log_capability(std::string_view name, bool ok, std::string_view detail, int err = 0) {
  boost::json::object line{{"event", "probe"}, {"capability", name}, {"ok", ok}};
  if (err != 0) line["errno"] = err;
  if (!detail.empty()) line["detail"] = detail;
  std::cerr << boost::json::serialize(line) << std::endl;
}

// Compiles `path`; on failure returns null and sets `why`. A file that is missing or does not
// parse is the operator's error and throws (PolicyError); only compilation can fail because of
// the environment (libseccomp asking the kernel about actions).
std::unique_ptr<seccomp_policies::BpfProgram> compile_policy(const std::string& path,
                                                             std::string& why) {
  auto policy = seccomp_policies::Policy::load_file(path);
  try {
    return std::make_unique<seccomp_policies::BpfProgram>(policy.compile());
  } catch (const seccomp_policies::PolicyError& e) {
    why = e.what();
    return nullptr;
  }
}

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
  jail::sys::UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  params.switch_ids = options.switch_ids;
  params.uid = uid;
  params.gid = gid;
  params.limits.address_space = 512ull << 20;
  params.fds = {devnull.get(), devnull.get(), devnull.get(), devnull.get(), devnull.get()};
  auto spawned = spawner.spawn(params);
  if (!spawned) return "fork: " + spawned.error().message();
  const jail::ChannelReport report = jail::read_channel_blocking(spawned->channel.get());
  auto status = jail::sys::wait4_blocking(spawned->pid);
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

std::unique_ptr<Executor> make_rlimit_executor(boost::asio::any_io_executor io, Settings settings,
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
  } else if (auto sub = jail::sys::become_child_subreaper(); !sub) {
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

// The warm path's zygotes get the cold path's jail, flag by flag: same interpreter, runner, seccomp
// policy, read-only paths and tmpfs size.
std::unique_ptr<ZygotePool> make_pool(boost::asio::any_io_executor io, const Settings& settings,
                                      const jail::JailConfig& config, UidPool& uids,
                                      std::string& why_not) {
  if (!settings.pool) {
    why_not = "--pool off";
    return nullptr;
  }
  const std::string module = settings.data_dir + "/_pysandbox_zygote.so";
  if (::access(module.c_str(), R_OK) != 0) {
    why_not = module + " is missing: every run starts cold";
    return nullptr;
  }
  // The zygote module is built for CPython PYSANDBOX_PYTHON_VERSION; another --python could
  // not load it.
  std::error_code ec;
  const auto real = std::filesystem::canonical(settings.python_path, ec);
  const std::string want = "python" PYSANDBOX_PYTHON_VERSION;
  if (ec || real.filename().string() != want) {
    why_not = "the zygote module is built for CPython " PYSANDBOX_PYTHON_VERSION
              " but --python is " +
              (ec ? settings.python_path : real.string()) + ": every run starts cold";
    return nullptr;
  }
  PoolOptions options;
  options.python_path = settings.python_path;
  options.bootstrap_path = settings.data_dir + "/zygote.py";
  options.env = config.env;
  boost::json::array ro_paths;
  for (const auto& p : config.mounts.ro_paths) ro_paths.emplace_back(p);
  options.config = {
      {"module", module},
      {"init", settings.init_path},
      {"runner", settings.data_dir + "/runner.py"},
      {"policy", settings.seccomp_policy_path},
      {"python", settings.python_path},
      {"tmpfs_bytes", config.mounts.tmpfs_bytes},
      {"ro_paths", std::move(ro_paths)},
      // The most any run may have: a sandbox made ahead lowers them to its run's.
      {"processes", 2ull * settings.pids_max},
      {"open_files", settings.nofile_max},
      {"file_size", settings.fsize_max_bytes},
  };
  options.preload = settings.preload;
  options.per_flavour = settings.pool_size;
  if (const char* fault = std::getenv("PYSANDBOX_TEST_ZYGOTE_FAULT_EVERY")) {
    options.fault_exit_after_fork = static_cast<unsigned>(std::strtoul(fault, nullptr, 10));
  }
  return std::make_unique<ZygotePool>(std::move(io), std::move(options), uids);
}

}  // namespace

std::unique_ptr<Executor> make_executor(boost::asio::any_io_executor io, const Settings& input) {
  Settings settings = input;
  if (settings.data_dir.empty()) settings.data_dir = default_data_dir();
  if (settings.init_path.empty()) settings.init_path = default_init_path();
  if (::access(settings.init_path.c_str(), X_OK) != 0)
    throw std::runtime_error("the sandbox's init " + settings.init_path +
                             " is not executable (it is built next to pysandboxd)");
  const bool explicit_policy = !settings.seccomp_policy_path.empty();
  if (!explicit_policy) settings.seccomp_policy_path = settings.data_dir + "/default.policy";
  if (::access(settings.python_path.c_str(), X_OK) != 0)
    throw std::runtime_error("the Python interpreter " + settings.python_path +
                             " is not executable (set --python)");

  // What a previous server with the same uid range left (it was killed before it could tear
  // its sandboxes down, and a sandbox that had not yet set its parent-death signal outlived it)
  // shares a uid with our sandboxes-to-be: it goes first.
  if (::geteuid() == 0) {
    for (uid_t uid = settings.uid_base; uid < settings.uid_base + sandbox_uid_count(settings);
         ++uid) {
      const auto left = jail::processes_of_uid(uid);
      if (left.empty()) continue;
      std::cerr << boost::json::serialize(boost::json::object{
                       {"event", "swept_leftovers"}, {"uid", uid}, {"processes", left.size()}})
                << std::endl;
      (void)jail::kill_all_of_uid(uid, uid);
    }
  }

  const std::string runner = read_file(settings.data_dir + "/runner.py", "Python runner");
  std::string seccomp_why;
  auto bpf = compile_policy(settings.seccomp_policy_path, seccomp_why);

  // Each capability on its own, the way the sandboxes use it; one log line each.
  probe::NamespaceProbeOptions probe_options;
  probe_options.uid = settings.uid_base;
  probe_options.gid = settings.uid_base;
  probe_options.seccomp = bpf.get();
  HostFacts facts;
  facts.facilities = probe::namespace_facilities(probe_options);
  facts.seccomp_compiled = bpf != nullptr;
  facts.seccomp_error = seccomp_why;
  facts.kill_process_available = seccomp_policies::kill_process_available();
  facts.sched_autogroup = probe::sched_autogroup_enabled();
  if (!bpf) facts.facilities.items.push_back({"seccomp", false, 0, seccomp_why});
  for (const auto& c : facts.facilities.items) log_capability(c.name, c.ok, c.detail, c.err);

  // namespaces: the whole jail, with the same policy and interpreter as a request, running `pass`.
  jail::JailConfig config;
  config.executable = settings.python_path;
  config.init_path = settings.init_path;
  config.argv = {settings.python_path, "-I", "-B", "-u", "-c", runner};
  config.env = kSandboxEnv;
  config.mounts.ro_paths = jail::default_ro_paths();
  for (const auto& p : settings.extra_ro_paths) config.mounts.ro_paths.push_back(p);
  config.mounts.tmpfs_bytes = settings.tmpfs_bytes;
  config.seccomp = bpf.get();

  jail::sys::UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  jail::RunParams params;
  params.host_uid = settings.uid_base;
  params.host_gid = settings.uid_base;
  params.limits.address_space = 512ull << 20;
  params.fds = {devnull.get(), devnull.get(), devnull.get(), devnull.get(), devnull.get()};

  std::optional<jail::Spawner> probe_spawner;
  NamespaceVerdict namespaces;
  if (wants_namespaces(settings)) {
    if (namespace_trial_possible(facts)) {
      jail::JailConfig probe_config = config;
      probe_config.argv = {settings.python_path, "-I", "-B", "-c", "pass"};
      auto created = jail::Spawner::create(probe_config);
      if (!created)
        throw std::runtime_error("invalid sandbox configuration: " + created.error().message());
      probe_spawner.emplace(std::move(*created));
      facts.namespace_jail = probe::jail_trial(*probe_spawner, params);
    }
    namespaces = namespace_verdict(facts, settings);
    log_capability("namespaces+pivot_root+seccomp", namespaces.ok, namespaces.why);
  }

  // full: a delegated cgroup v2 subtree, and a probe run born inside a leaf of it.
  std::optional<cgroups::Delegation> delegation;
  if (wants_cgroup(settings, namespaces)) {
    const auto v2 = cgroups::probe_v2();
    log_capability("cgroup_v2", v2.usable, v2.reason);
    probe::CgroupFacts& cgroup = facts.cgroup.emplace();
    cgroup.v2_usable = v2.usable;
    cgroup.v2_reason = v2.reason;
    if (v2.usable && namespaces.ok) {
      auto setup = cgroups::Delegation::setup(v2);
      if (!setup) {
        cgroup.delegation_error = setup.error().message();
      } else {
        cgroups::LeafLimits limits;
        limits.memory_max_bytes = 512ull << 20;
        limits.pids_max = settings.pids_max;
        limits.cpu_max_cores = settings.cpu_max_cores;
        auto leaf = setup->create_leaf("probe", limits);
        if (!leaf) {
          cgroup.delegation_error = leaf.error().message();
        } else {
          params.cgroup_fd = leaf->dir_fd();
          const auto in_leaf = probe::jail_trial(*probe_spawner, params);
          params.cgroup_fd = -1;
          if (in_leaf.ok) {
            cgroup.delegation_error = "";
            cgroup.delegation = setup->describe();
            delegation = std::move(*setup);
          } else {
            cgroup.delegation_error = "clone3(CLONE_INTO_CGROUP): " + in_leaf.detail;
          }
        }  // the probe leaf is killed and removed here
      }
      log_capability("cgroup_delegation", delegation.has_value(),
                     delegation ? "" : *cgroup.delegation_error);
    }
  }

  const ModeDecision decision = decide_mode(facts, settings);
  if (decision.refusal) throw std::runtime_error(*decision.refusal);
  if (decision.mode == Isolation::kRlimit) {
    return make_rlimit_executor(std::move(io), std::move(settings), explicit_policy, runner,
                                decision);
  }

  auto spawner = jail::Spawner::create(config);
  if (!spawner)
    throw std::runtime_error("invalid sandbox configuration: " + spawner.error().message());

  boost::json::object caps = describe(decision);
  auto pool_io = io;
  auto executor = std::make_unique<SandboxExecutor>(std::move(io), settings, std::move(bpf),
                                                    std::move(*spawner), std::move(delegation),
                                                    std::move(caps));
  std::string why_no_pool;
  if (auto pool = make_pool(pool_io, settings, config, executor->uids(), why_no_pool)) {
    executor->set_pool(std::move(pool));
  } else {
    executor->set_pool_off_reason(why_no_pool);
    log_capability("pool", false, why_no_pool);
  }
  return executor;
}

}  // namespace pysandbox::executor
