#include "executor/factory.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <boost/json/serialize.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "cgroups/delegation.hpp"
#include "cgroups/probe.hpp"
#include "executor/sandbox_executor.hpp"
#include "jail/probe.hpp"
#include "jail/sys/unique_fd.hpp"

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

std::string default_data_dir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "/usr/local/share/pysandbox";
  return (exe.parent_path().parent_path() / "share" / "pysandbox").string();
}

std::string read_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(std::string("cannot read the ") + what + " at " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void log_capability(std::string_view name, bool ok, std::string_view detail) {
  boost::json::object line{{"event", "probe"}, {"capability", name}, {"ok", ok}};
  if (!detail.empty()) line["detail"] = detail;
  std::cerr << boost::json::serialize(line) << std::endl;
}

}  // namespace

std::unique_ptr<Executor> make_executor(boost::asio::any_io_executor io, const Settings& input) {
  Settings settings = input;
  if (settings.data_dir.empty()) settings.data_dir = default_data_dir();
  if (settings.seccomp_policy_path.empty())
    settings.seccomp_policy_path = settings.data_dir + "/default.policy";
  if (::access(settings.python_path.c_str(), X_OK) != 0)
    throw std::runtime_error("the Python interpreter " + settings.python_path +
                             " is not executable (set --python)");

  const std::string runner = read_file(settings.data_dir + "/runner.py", "Python runner");
  auto policy = seccomp_policies::Policy::load_file(settings.seccomp_policy_path);
  auto bpf = std::make_unique<seccomp_policies::BpfProgram>(policy.compile());

  jail::JailConfig config;
  config.executable = settings.python_path;
  config.argv = {settings.python_path, "-I", "-B", "-u", "-c", runner};
  config.env = kSandboxEnv;
  config.mounts.ro_paths = jail::default_ro_paths();
  for (const auto& p : settings.extra_ro_paths) config.mounts.ro_paths.push_back(p);
  config.mounts.tmpfs_bytes = settings.tmpfs_bytes;
  config.seccomp = bpf.get();

  const auto forced = settings.forced_isolation;
  if (forced && *forced == Isolation::kRlimit) {
    throw std::runtime_error(
        "isolation mode 'rlimit' is not available in this build; use --isolation namespaces");
  }

  // Probe: the same jail, policy and interpreter as a request, running `pass`.
  jail::JailConfig probe_config = config;
  probe_config.argv = {settings.python_path, "-I", "-B", "-c", "pass"};
  auto probe_spawner = jail::Spawner::create(probe_config);
  if (!probe_spawner)
    throw std::runtime_error("invalid sandbox configuration: " + probe_spawner.error().message());
  jail::sys::UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  jail::RunParams params;
  params.host_uid = settings.uid_base;
  params.host_gid = settings.uid_base;
  params.limits.address_space = 512ull << 20;
  params.fds = {devnull.get(), devnull.get(), devnull.get(), devnull.get(), devnull.get()};
  const auto probe = jail::probe_spawn(*probe_spawner, params);
  log_capability("namespaces+pivot_root+seccomp", probe.ok, probe.detail);
  if (!probe.ok) {
    throw std::runtime_error(
        "the namespace sandbox does not work on this host (" + probe.detail +
        "); it needs user, PID, mount, network, IPC, UTS and cgroup namespaces, clone3 and "
        "pidfds (Linux >= 5.7, root or unprivileged user namespaces enabled)");
  }

  // full: a delegated cgroup v2 subtree, and a probe run born inside a leaf of it.
  std::optional<cgroups::Delegation> delegation;
  boost::json::object cgroup_info{{"cgroup", "none"}};
  if (!forced || *forced == Isolation::kFull) {
    const auto v2 = cgroups::probe_v2();
    log_capability("cgroup_v2", v2.usable, v2.reason);
    std::string why_not = v2.reason;
    if (v2.usable) {
      auto setup = cgroups::Delegation::setup(v2);
      if (!setup) {
        why_not = setup.error().message();
      } else {
        cgroups::LeafLimits limits;
        limits.memory_max_bytes = 512ull << 20;
        limits.pids_max = settings.pids_max;
        limits.cpu_max_cores = settings.cpu_max_cores;
        auto leaf = setup->create_leaf("probe", limits);
        if (!leaf) {
          why_not = leaf.error().message();
        } else {
          params.cgroup_fd = leaf->dir_fd();
          const auto in_leaf = jail::probe_spawn(*probe_spawner, params);
          params.cgroup_fd = -1;
          if (in_leaf.ok) {
            delegation = std::move(*setup);
          } else {
            why_not = "clone3(CLONE_INTO_CGROUP): " + in_leaf.detail;
          }
        }  // the probe leaf is killed and removed here
      }
      log_capability("cgroup_delegation", delegation.has_value(), delegation ? "" : why_not);
    }
    if (delegation) {
      cgroup_info = delegation->describe();
    } else {
      cgroup_info = {{"cgroup", "unavailable"}, {"reason", why_not}};
      if (forced) throw std::runtime_error("--isolation full is not available: " + why_not);
    }
  }
  const Isolation mode = delegation ? Isolation::kFull : Isolation::kNamespaces;
  if (mode < settings.min_isolation) {
    throw std::runtime_error(
        std::string("isolation floor '") + std::string(to_string(settings.min_isolation)) +
        "' not met: this host gives '" + std::string(to_string(mode)) +
        "'. full needs a delegated, writable cgroup v2 with the memory, pids and cpu "
        "controllers (a VM or GKE/Cloud Run gen2 node, docker run --cgroupns=private with a "
        "writable /sys/fs/cgroup, or a systemd unit with Delegate=yes): " +
        std::string(cgroup_info.contains("reason") ? cgroup_info.at("reason").as_string() : ""));
  }

  auto spawner = jail::Spawner::create(config);
  if (!spawner)
    throw std::runtime_error("invalid sandbox configuration: " + spawner.error().message());

  boost::json::object caps{
      {"mode", to_string(mode)},
      {"namespaces", boost::json::array{"user", "pid", "mount", "network", "ipc", "uts", "cgroup"}},
      {"root", "pivot_root, read-only"},
      {"tmpfs_bytes", settings.tmpfs_bytes},
      {"seccomp", true},
      {"seccomp_policy", settings.seccomp_policy_path},
      {"pidfd", true},
      {"memory_limit", delegation ? "cgroup memory.max" : "RLIMIT_AS"},
      {"rlimits", boost::json::array{"AS", "CPU", "NPROC", "NOFILE", "FSIZE", "CORE"}},
  };
  for (const auto& [key, value] : cgroup_info) caps[key] = value;
  return std::make_unique<SandboxExecutor>(std::move(io), std::move(settings), std::move(bpf),
                                           std::move(*spawner), std::move(delegation),
                                           std::move(caps));
}

}  // namespace pysandbox::executor
