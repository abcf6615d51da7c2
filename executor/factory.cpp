#include "executor/factory.hpp"

#include <unistd.h>

#include <boost/json/serialize.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "base/log.hpp"
#include "executor/assemble_pool.hpp"
#include "executor/assemble_rlimit.hpp"
#include "executor/host_probe.hpp"
#include "executor/mode.hpp"
#include "executor/namespace_executor.hpp"
#include "executor/startup.hpp"
#include "jail/rlimit_spawner.hpp"
#include "jail/uid_sweep.hpp"

namespace pysandbox::executor {

namespace {

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
      base::log("executor", "swept_leftovers", {{"uid", uid}, {"processes", left.size()}});
      (void)jail::kill_all_of_uid(uid, uid);
    }
  }

  const std::string runner = read_file(settings.data_dir + "/runner.py", "Python runner");
  std::string seccomp_why;
  auto bpf = compile_policy(settings.seccomp_policy_path, seccomp_why);

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

  ProbedHost host = probe_host(settings, bpf.get(), seccomp_why, config);

  const ModeDecision decision = decide_mode(host.facts, settings);
  if (decision.refusal) throw std::runtime_error(*decision.refusal);
  if (decision.mode == Isolation::kRlimit) {
    return assemble_rlimit(std::move(io), std::move(settings), explicit_policy, runner, decision);
  }

  auto spawner = jail::NamespaceSpawner::create(config);
  if (!spawner)
    throw std::runtime_error("invalid sandbox configuration: " + spawner.error().message());

  boost::json::object caps = describe(decision);
  auto pool_io = io;
  auto executor = std::make_unique<NamespaceExecutor>(std::move(io), settings, std::move(bpf),
                                                      std::move(*spawner),
                                                      std::move(host.delegation), std::move(caps));
  std::string why_no_pool;
  if (auto pool = assemble_pool(pool_io, settings, config, executor->uids(), why_no_pool)) {
    executor->set_pool(std::move(pool));
  } else {
    executor->set_pool_off_reason(why_no_pool);
    log_capability("pool", false, why_no_pool);
  }
  return executor;
}

}  // namespace pysandbox::executor
