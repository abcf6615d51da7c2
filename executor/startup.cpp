#include "executor/startup.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <iostream>

#include "base/log.hpp"
#include "seccomp_policies/policy.hpp"

namespace pysandbox::executor {

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

void log_capability(std::string_view name, bool ok, std::string_view detail, int err) {
  boost::json::object line{{"capability", name}, {"ok", ok}};
  if (err != 0) line["errno"] = err;
  if (!detail.empty()) line["detail"] = detail;
  base::log("executor", "probe", line);
}

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

}  // namespace pysandbox::executor
