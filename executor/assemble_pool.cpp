#include "executor/assemble_pool.hpp"

#include <unistd.h>

#include <boost/json/array.hpp>
#include <cstdlib>
#include <filesystem>

namespace pysandbox::executor {

std::unique_ptr<ZygotePool> assemble_pool(boost::asio::any_io_executor io, const Settings& settings,
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

}  // namespace pysandbox::executor
