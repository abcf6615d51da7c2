// The trial run of the namespace jail: it passes where the jail works and says why it failed.
#include "probe/jail_trial.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "base/sys/unique_fd.hpp"

namespace pysandbox::probe {
namespace {

constexpr uid_t kUid = 2000971;

jail::JailConfig shell_config(std::string script) {
  jail::JailConfig c;
  c.executable = "/bin/sh";
  c.argv = {"sh", "-c", std::move(script)};
  c.env = {"PATH=/usr/bin:/bin"};
  c.mounts.ro_paths = jail::default_ro_paths();
  c.init_path = PYSANDBOX_INIT_PATH;
  return c;
}

TEST(JailTrial, SucceedsOnThisHostAndFailsOnABrokenConfig) {
  base::sys::UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  jail::RunParams p;
  p.host_uid = p.host_gid = kUid;
  p.fds = {devnull.get(), devnull.get(), devnull.get(), devnull.get(), devnull.get()};
  auto good = jail::NamespaceSpawner::create(shell_config("exit 0"));
  ASSERT_TRUE(good);
  EXPECT_TRUE(jail_trial(*good, p).ok);
  auto bad = jail::NamespaceSpawner::create(shell_config("exit 4"));
  ASSERT_TRUE(bad);
  auto result = jail_trial(*bad, p);
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.detail, "probe process exited with status 4");
}

}  // namespace
}  // namespace pysandbox::probe
