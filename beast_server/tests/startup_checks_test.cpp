// Operator configuration that names host things is checked before the server starts. Runs
// Debian's interpreter on module names (operator input, not a script).
#include "beast_server/startup_checks.hpp"

#include <gtest/gtest.h>

namespace pysandbox::beast_server {
namespace {

using namespace std::chrono_literals;
constexpr const char* kPython = "/usr/bin/python3";

TEST(CheckPreload, PresentModulesPass) {
  EXPECT_EQ(check_preload(kPython, {"json", "os.path", "collections"}, 30s), std::nullopt);
  EXPECT_EQ(check_preload(kPython, {}, 30s), std::nullopt);
}

TEST(CheckPreload, MissingModulesAreNamed) {
  const auto error = check_preload(kPython, {"json", "no_such_module_xyz", "nope.sub"}, 30s);
  ASSERT_TRUE(error.has_value());
  EXPECT_NE(error->find("'no_such_module_xyz'"), std::string::npos) << *error;
  EXPECT_NE(error->find("'nope.sub'"), std::string::npos) << *error;
  EXPECT_EQ(error->find("'json'"), std::string::npos) << *error;
  EXPECT_EQ(error->find('\n'), std::string::npos) << "one line";
}

TEST(CheckPreload, AnInterpreterThatCannotRunIsNamed) {
  const auto error = check_preload("/nonexistent/python3", {"json"}, 30s);
  ASSERT_TRUE(error.has_value());
  EXPECT_NE(error->find("/nonexistent/python3"), std::string::npos) << *error;
  const auto not_python = check_preload("/bin/false", {"json"}, 30s);
  ASSERT_TRUE(not_python.has_value());
  EXPECT_NE(not_python->find("/bin/false"), std::string::npos) << *not_python;
}

TEST(CheckExtraRoPaths, MissingEntriesAreNamed) {
  EXPECT_EQ(check_extra_ro_paths({"/usr", "/etc/hostname"}), std::nullopt);
  const auto error = check_extra_ro_paths({"/usr", "/no/such/dir"});
  ASSERT_TRUE(error.has_value());
  EXPECT_NE(error->find("/no/such/dir"), std::string::npos);
}

TEST(CheckStartupConfig, PreloadOnlyWithThePool) {
  Config config;
  config.executor.preload = {"no_such_module_xyz"};
  config.executor.pool = true;
  EXPECT_TRUE(check_startup_config(config).has_value());
  config.executor.pool = false;
  EXPECT_FALSE(check_startup_config(config).has_value());
  config.executor.extra_ro_paths = {"/no/such/dir"};
  EXPECT_TRUE(check_startup_config(config).has_value());
}

}  // namespace
}  // namespace pysandbox::beast_server
